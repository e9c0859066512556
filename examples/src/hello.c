/* The demo image's program: greets its arguments (or $GREETING, or the world).
 * Built by examples/build.py with musl-gcc -static -Os. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *fallback = getenv("GREETING");
    if (argc < 2) {
        printf("hello, %s\n", fallback ? fallback : "world");
        return 0;
    }
    for (int i = 1; i < argc; i++)
        printf("hello, %s\n", argv[i]);
    return 0;
}
