/*
 * faultmod: a test-only PKCS#11 module that sits in front of a real one
 * (SoftHSM2 by default) and makes one chosen call fail on purpose.
 *
 * It exists for the fault-injection tests of kpsa: importing a key must be
 * all-or-nothing, and every token error must be reported, not swallowed.
 * SoftHSM2 never fails on its own in the middle of an import, so the tests
 * load this module instead and fail the Nth call of some function.
 *
 * Environment, read at every C_Initialize:
 *   KPSA_FAULT_MODULE      real module (default: SoftHSM2, see below)
 *   KPSA_FAULT_FUNC        function to fail, e.g. C_CreateObject;
 *                          unset or empty means pure pass-through
 *   KPSA_FAULT_AT          fail its Nth call (1-based, default 1)
 *   KPSA_FAULT_STICKY      1: also fail every later call of it
 *   KPSA_FAULT_RV          CKR_* name or number (default CKR_DEVICE_ERROR)
 *   KPSA_FAULT_DELAY_MS    instead of failing the call, wait this many
 *                          milliseconds and then make it: a slow token
 *   KPSA_FAULT_COUNT_FILE  at C_Finalize append "NAME COUNT" lines here
 *
 * KPSA_FAULT_MODULE is read once, when C_GetFunctionList first loads it.
 * Calls are counted from the latest C_Initialize, so one process can run
 * several initialize/finalize rounds with a different fault in each.
 * A malformed setting makes C_Initialize fail loudly: a typo must not turn
 * a fault test into a silent pass-through that passes for the wrong reason.
 */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* Short names so that each row of the table below fits on one line. */
typedef CK_SESSION_HANDLE ses_t;
typedef CK_OBJECT_HANDLE obj_t;
typedef CK_ULONG ul_t;
typedef CK_ULONG_PTR ulp_t;
typedef CK_BYTE_PTR buf_t;
typedef CK_ATTRIBUTE_PTR attr_t;
typedef CK_MECHANISM_PTR mech_t;
typedef CK_SLOT_ID slot_t;

/*
 * Every wrapped function except C_Initialize and C_Finalize, which need
 * bodies of their own: X(name, parameter list, argument list).
 */
/* clang-format off */
#define WRAPPED(X)                                                           \
    X(C_GetInfo, (CK_INFO_PTR i), (i))                                       \
    X(C_GetSlotList, (CK_BBOOL p, CK_SLOT_ID_PTR l, ulp_t n), (p, l, n))     \
    X(C_GetSlotInfo, (slot_t s, CK_SLOT_INFO_PTR i), (s, i))                 \
    X(C_GetTokenInfo, (slot_t s, CK_TOKEN_INFO_PTR i), (s, i))               \
    X(C_GetMechanismList, (slot_t s, CK_MECHANISM_TYPE_PTR m, ulp_t n),      \
      (s, m, n))                                                             \
    X(C_OpenSession, (slot_t s, CK_FLAGS f, void *a, CK_NOTIFY cb,           \
                      CK_SESSION_HANDLE_PTR h), (s, f, a, cb, h))            \
    X(C_CloseSession, (ses_t s), (s))                                        \
    X(C_CloseAllSessions, (slot_t s), (s))                                   \
    X(C_GetSessionInfo, (ses_t s, CK_SESSION_INFO_PTR i), (s, i))            \
    X(C_Login, (ses_t s, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, ul_t n),         \
      (s, u, p, n))                                                          \
    X(C_Logout, (ses_t s), (s))                                              \
    X(C_CreateObject, (ses_t s, attr_t t, ul_t n, obj_t *o), (s, t, n, o))   \
    X(C_CopyObject, (ses_t s, obj_t o, attr_t t, ul_t n, obj_t *c),          \
      (s, o, t, n, c))                                                       \
    X(C_DestroyObject, (ses_t s, obj_t o), (s, o))                           \
    X(C_GetObjectSize, (ses_t s, obj_t o, ulp_t n), (s, o, n))               \
    X(C_GetAttributeValue, (ses_t s, obj_t o, attr_t t, ul_t n),             \
      (s, o, t, n))                                                          \
    X(C_SetAttributeValue, (ses_t s, obj_t o, attr_t t, ul_t n),             \
      (s, o, t, n))                                                          \
    X(C_FindObjectsInit, (ses_t s, attr_t t, ul_t n), (s, t, n))             \
    X(C_FindObjects, (ses_t s, obj_t *o, ul_t m, ulp_t n), (s, o, m, n))     \
    X(C_FindObjectsFinal, (ses_t s), (s))                                    \
    X(C_DigestInit, (ses_t s, mech_t m), (s, m))                             \
    X(C_Digest, (ses_t s, buf_t d, ul_t n, buf_t o, ulp_t on),               \
      (s, d, n, o, on))                                                      \
    X(C_DigestUpdate, (ses_t s, buf_t d, ul_t n), (s, d, n))                 \
    X(C_DigestKey, (ses_t s, obj_t k), (s, k))                               \
    X(C_DigestFinal, (ses_t s, buf_t o, ulp_t on), (s, o, on))               \
    X(C_SignInit, (ses_t s, mech_t m, obj_t k), (s, m, k))                   \
    X(C_Sign, (ses_t s, buf_t d, ul_t n, buf_t o, ulp_t on),                 \
      (s, d, n, o, on))                                                      \
    X(C_SignUpdate, (ses_t s, buf_t d, ul_t n), (s, d, n))                   \
    X(C_SignFinal, (ses_t s, buf_t o, ulp_t on), (s, o, on))                 \
    X(C_VerifyInit, (ses_t s, mech_t m, obj_t k), (s, m, k))                 \
    X(C_Verify, (ses_t s, buf_t d, ul_t n, buf_t g, ul_t gn),                \
      (s, d, n, g, gn))                                                      \
    X(C_GenerateKey, (ses_t s, mech_t m, attr_t t, ul_t n, obj_t *k),        \
      (s, m, t, n, k))                                                       \
    X(C_DeriveKey, (ses_t s, mech_t m, obj_t b, attr_t t, ul_t n,            \
                    obj_t *k), (s, m, b, t, n, k))                           \
    X(C_SeedRandom, (ses_t s, buf_t d, ul_t n), (s, d, n))                   \
    X(C_GenerateRandom, (ses_t s, buf_t d, ul_t n), (s, d, n))
/* clang-format on */

#define AS_INDEX(name, params, args) IDX_##name,
#define AS_NAME(name, params, args)  #name,

enum func_index {
    IDX_C_Initialize,
    IDX_C_Finalize,
    WRAPPED(AS_INDEX) IDX_COUNT
};

static const char *const func_names[IDX_COUNT] = {"C_Initialize", "C_Finalize",
                                                  WRAPPED(AS_NAME)};

#define RV_ENTRY(rv) #rv, rv

static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    {RV_ENTRY(CKR_ARGUMENTS_BAD)},
    {RV_ENTRY(CKR_ATTRIBUTE_VALUE_INVALID)},
    {RV_ENTRY(CKR_BUFFER_TOO_SMALL)},
    {RV_ENTRY(CKR_CRYPTOKI_NOT_INITIALIZED)},
    {RV_ENTRY(CKR_DEVICE_ERROR)},
    {RV_ENTRY(CKR_DEVICE_MEMORY)},
    {RV_ENTRY(CKR_DEVICE_REMOVED)},
    {RV_ENTRY(CKR_FUNCTION_FAILED)},
    {RV_ENTRY(CKR_FUNCTION_NOT_SUPPORTED)},
    {RV_ENTRY(CKR_GENERAL_ERROR)},
    {RV_ENTRY(CKR_HOST_MEMORY)},
    {RV_ENTRY(CKR_KEY_HANDLE_INVALID)},
    {RV_ENTRY(CKR_MECHANISM_INVALID)},
    {RV_ENTRY(CKR_OBJECT_HANDLE_INVALID)},
    {RV_ENTRY(CKR_OPERATION_ACTIVE)},
    {RV_ENTRY(CKR_PIN_INCORRECT)},
    {RV_ENTRY(CKR_PIN_LOCKED)},
    {RV_ENTRY(CKR_SESSION_CLOSED)},
    {RV_ENTRY(CKR_SESSION_HANDLE_INVALID)},
    {RV_ENTRY(CKR_TEMPLATE_INCONSISTENT)},
    {RV_ENTRY(CKR_TOKEN_NOT_PRESENT)},
    {RV_ENTRY(CKR_TOKEN_WRITE_PROTECTED)},
    {RV_ENTRY(CKR_USER_NOT_LOGGED_IN)},
};

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST wrapped_list;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static CK_RV load_rv;

/*
 * Counters are atomic because applications may call into a module from
 * several threads at once. The settings below them are written only by
 * C_Initialize, which PKCS#11 forbids to overlap with any other call.
 */
static atomic_ulong calls[IDX_COUNT];
static int fault_func = -1;
static unsigned long fault_at;
static bool fault_sticky;
static CK_RV fault_rv;
static unsigned long fault_delay_ms;
/* A copy, since a later setenv() may free the string getenv() returned. */
static char count_path[4096];

static bool inject(enum func_index idx, CK_RV *rv)
{
    unsigned long n = atomic_fetch_add(&calls[idx], 1) + 1;

    if ((int)idx != fault_func || n < fault_at)
        return false;
    if (n > fault_at && !fault_sticky)
        return false;
    if (fault_delay_ms > 0) {
        struct timespec ts = {(time_t)(fault_delay_ms / 1000),
                              (long)(fault_delay_ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return false;
    }
    *rv = fault_rv;
    return true;
}

#define DEFINE_WRAPPER(name, params, args)                                     \
    static CK_RV w_##name params                                               \
    {                                                                          \
        CK_RV rv;                                                              \
        return inject(IDX_##name, &rv) ? rv : real->name args;                 \
    }

WRAPPED(DEFINE_WRAPPER)

static bool parse_rv(const char *s, CK_RV *out)
{
    for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
        if (strcmp(s, rv_names[i].name) == 0) {
            *out = rv_names[i].rv;
            return true;
        }
    }
    /* Numbers let a test try a code that the table lacks. */
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    /* CKR_OK would fake a success whose outputs were never filled in. */
    if (s[0] < '0' || s[0] > '9' || *end || errno || v == CKR_OK)
        return false;
    *out = v;
    return true;
}

static bool config_error(const char *var, const char *value)
{
    fprintf(stderr, "faultmod: bad %s=%s\n", var, value);
    return false;
}

static bool read_config(void)
{
    const char *func = getenv("KPSA_FAULT_FUNC");
    const char *at = getenv("KPSA_FAULT_AT");
    const char *sticky = getenv("KPSA_FAULT_STICKY");
    const char *rv = getenv("KPSA_FAULT_RV");
    const char *path = getenv("KPSA_FAULT_COUNT_FILE");
    const char *delay = getenv("KPSA_FAULT_DELAY_MS");

    fault_func = -1;
    fault_delay_ms = 0;
    fault_at = 1;
    fault_sticky = false;
    fault_rv = CKR_DEVICE_ERROR;
    count_path[0] = '\0';

    if (path && *path) {
        size_t len = strlen(path);
        if (len >= sizeof(count_path))
            return config_error("KPSA_FAULT_COUNT_FILE", path);
        memcpy(count_path, path, len + 1);
    }
    if (!func || !*func)
        return true;

    for (int i = 0; i < IDX_COUNT; i++) {
        if (strcmp(func, func_names[i]) == 0)
            fault_func = i;
    }
    if (fault_func < 0)
        return config_error("KPSA_FAULT_FUNC", func);
    if (at && *at) {
        char *end;
        errno = 0;
        fault_at = strtoul(at, &end, 10);
        if (at[0] < '0' || at[0] > '9' || *end || errno || fault_at == 0)
            return config_error("KPSA_FAULT_AT", at);
    }
    if (sticky && *sticky) {
        if (strcmp(sticky, "0") != 0 && strcmp(sticky, "1") != 0)
            return config_error("KPSA_FAULT_STICKY", sticky);
        fault_sticky = sticky[0] == '1';
    }
    if (rv && *rv && !parse_rv(rv, &fault_rv))
        return config_error("KPSA_FAULT_RV", rv);
    if (delay && *delay) {
        char *end;
        errno = 0;
        fault_delay_ms = strtoul(delay, &end, 10);
        if (delay[0] < '0' || delay[0] > '9' || *end || errno ||
            fault_delay_ms == 0 || fault_delay_ms > 60000)
            return config_error("KPSA_FAULT_DELAY_MS", delay);
    }
    return true;
}

static void write_counts(void)
{
    if (!count_path[0])
        return;

    FILE *f = fopen(count_path, "a");
    if (!f) {
        fprintf(stderr, "faultmod: %s: %s\n", count_path, strerror(errno));
        return;
    }
    for (int i = 0; i < IDX_COUNT; i++) {
        unsigned long n = atomic_load(&calls[i]);
        if (n > 0)
            fprintf(f, "%s %lu\n", func_names[i], n);
    }
    if (fclose(f) != 0)
        fprintf(stderr, "faultmod: %s: %s\n", count_path, strerror(errno));
}

static CK_RV w_C_Initialize(CK_VOID_PTR init_args)
{
    CK_RV rv;

    if (!read_config())
        return CKR_GENERAL_ERROR;
    for (int i = 0; i < IDX_COUNT; i++)
        atomic_store(&calls[i], 0);
    if (inject(IDX_C_Initialize, &rv))
        return rv;
    return real->C_Initialize(init_args);
}

static CK_RV w_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv;
    bool fail = inject(IDX_C_Finalize, &rv);

    /* Even a failed C_Finalize is the end of the run the test measures. */
    write_counts();
    return fail ? rv : real->C_Finalize(reserved);
}

#define INSTALL(name, params, args) wrapped_list.name = w_##name;

static void load_real(void)
{
    const char *path = getenv("KPSA_FAULT_MODULE");
    if (!path || !*path)
        path = DEFAULT_MODULE;

    load_rv = CKR_GENERAL_ERROR;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "faultmod: %s\n", dlerror());
        return;
    }
    void *sym = dlsym(handle, "C_GetFunctionList");
    if (!sym) {
        fprintf(stderr, "faultmod: %s\n", dlerror());
        return;
    }
    /* memcpy, as ISO C has no cast from object to function pointer. */
    CK_C_GetFunctionList get;
    memcpy(&get, &sym, sizeof(get));
    if (get == C_GetFunctionList) {
        fprintf(stderr, "faultmod: %s is faultmod itself\n", path);
        return;
    }
    CK_RV rv = get(&real);
    if (rv != CKR_OK || !real) {
        fprintf(stderr, "faultmod: %s: C_GetFunctionList: 0x%lx\n", path,
                (unsigned long)rv);
        return;
    }

    wrapped_list = *real;
    /* Only the 2.x table is copied, so never advertise 3.0 entries. */
    if (wrapped_list.version.major > 2) {
        wrapped_list.version.major = 2;
        wrapped_list.version.minor = 40;
    }
    wrapped_list.C_GetFunctionList = C_GetFunctionList;
    wrapped_list.C_Initialize = w_C_Initialize;
    wrapped_list.C_Finalize = w_C_Finalize;
    WRAPPED(INSTALL)
    load_rv = CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (!list)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&load_once, load_real);
    if (load_rv != CKR_OK)
        return load_rv;
    *list = &wrapped_list;
    return CKR_OK;
}
