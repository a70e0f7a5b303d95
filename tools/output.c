#include "output.h"

void print_safe(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

int fail(const char *subject, int code, const char *msg)
{
    fputs("kpsa: ", stderr);
    if (subject != NULL) {
        print_safe(stderr, subject);
        fputs(": ", stderr);
    }
    fprintf(stderr, "%s\n", msg);
    return code;
}
