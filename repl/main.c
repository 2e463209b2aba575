#include <stdio.h>
int main(void) { puts("quarry"); return 0; }
