#include <stdio.h>
int main(void) { puts("noisegate: CLI coming"); return 0; }
