#include <stdio.h>
int main(void) { puts("meshproxy"); return 0; }
