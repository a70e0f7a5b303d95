#include "pin.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

static size_t strip_newline(char *s)
{
    size_t n = strcspn(s, "\r\n");

    s[n] = '\0';
    return n;
}

static int pin_from_file(const char *path, char pin[PIN_MAX], size_t *len,
                         struct kpsa_err *err)
{
    FILE *f = fopen(path, "r");
    int ret = -1;

    if (f == NULL)
        return kpsa_err_set(err, KPSA_ERR_USER, "%s: cannot read PIN file",
                            path);
    if (fgets(pin, PIN_MAX, f) == NULL) {
        kpsa_err_set(err, KPSA_ERR_USER, "%s: PIN file is empty", path);
        goto out;
    }
    if (strcspn(pin, "\r\n") == strlen(pin) && !feof(f) && fgetc(f) != EOF) {
        kpsa_err_set(err, KPSA_ERR_USER, "%s: PIN is over %d characters", path,
                     PIN_MAX - 2);
        goto out;
    }
    *len = strip_newline(pin);
    if (*len == 0) {
        kpsa_err_set(err, KPSA_ERR_USER, "%s: PIN file's first line is empty",
                     path);
        goto out;
    }
    ret = 0;
out:
    fclose(f);
    return ret;
}

static int pin_from_terminal(const char *label, char pin[PIN_MAX], size_t *len,
                             struct kpsa_err *err)
{
    struct termios old, quiet;
    FILE *tty = fopen("/dev/tty", "r+");
    int ret = -1;

    if (tty == NULL || tcgetattr(fileno(tty), &old) != 0) {
        kpsa_err_set(err, KPSA_ERR_USER, "cannot prompt for the PIN");
        goto out;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fprintf(tty, "PIN for token '%s': ", label);
    fflush(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    if (fgets(pin, PIN_MAX, tty) != NULL)
        ret = 0;
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    if (ret != 0 || (*len = strip_newline(pin)) == 0)
        ret = kpsa_err_set(err, KPSA_ERR_USER, "no PIN entered");
out:
    if (tty != NULL)
        fclose(tty);
    return ret;
}

int pin_read(const char *source, int may_prompt, const char *token_label,
             char pin[PIN_MAX], size_t *len, struct kpsa_err *err)
{
    int ret;

    if (source != NULL && strncmp(source, "file:", 5) == 0)
        ret = pin_from_file(source + 5, pin, len, err);
    else if (source != NULL && source[0] != '\0')
        /* Do not echo it: a user may have typed the PIN itself. */
        ret = kpsa_err_set(err, KPSA_ERR_USER,
                           "PIN source must be file:PATH; a PIN is never "
                           "taken from the command line");
    else if (may_prompt && isatty(STDIN_FILENO))
        ret = pin_from_terminal(token_label, pin, len, err);
    else
        ret = kpsa_err_set(err, KPSA_ERR_USER,
                           "no PIN source: give --pin-source file:PATH or "
                           "set KPSA_PIN_SOURCE");
    if (ret != 0)
        OPENSSL_cleanse(pin, PIN_MAX);
    return ret;
}
