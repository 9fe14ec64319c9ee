/*
 * A fake libnvidia-ml.so.1 for campwatch's tests.
 *
 * It implements every NVML call the GPU collector makes, with the signatures and struct layouts
 * of NVIDIA's nvml.h as pynvml (nvidia-ml-py 13.x) declares them in ctypes, so the real pynvml code
 * runs against it. What the devices report comes from a scenario file (README.md): device models,
 * value series indexed by a step counter, unsupported fields, errors injected into given calls
 * for given steps, XID events, MIG instances, processes.
 *
 * Control functions (fakenvml_*) let a test load another scenario, advance the step and read call
 * counters without reloading the library.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN 999

#define MAX_DEV 16
#define MAX_MIG 8
#define MAX_SERIES 128
#define MAX_PROC 16
#define MAX_RULES 64
#define MAX_XID 128
#define MAX_NAMES 32
#define MAX_SETS 8

#define DEV_MAGIC 0x6e766d6cu
#define SET_MAGIC 0x65767374u

/* ---- NVML types, laid out as pynvml's ctypes structures ---- */

typedef int nvmlReturn_t;
typedef struct fake_dev *nvmlDevice_t;
typedef struct fake_evset *nvmlEventSet_t;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

#define nvmlMemory_v2 0x02000028u
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    unsigned int valueType;
    unsigned int nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;

typedef struct {
    unsigned long long timeStamp;
    unsigned int pid, smUtil, memUtil, encUtil, decUtil, jpgUtil, ofaUtil;
} nvmlProcessUtilizationInfo_v1_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#define nvmlProcessesUtilizationInfo_v1 0x01000018u
typedef struct {
    unsigned int version;
    unsigned int processSamplesCount;
    unsigned long long lastSeenTimeStamp;
    nvmlProcessUtilizationInfo_v1_t *procUtilArray;
} nvmlProcessesUtilizationInfo_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

#define NVML_EVENT_XID 0x8ull
#define FI_NVLINK_CRC_FLIT_TOTAL 38
#define FI_NVLINK_CRC_DATA_TOTAL 45
#define FI_NVLINK_REPLAY_TOTAL 52
#define FI_NVLINK_RECOVERY_TOTAL 59
#define FI_NVLINK_THROUGHPUT_DATA_TX 138
#define FI_NVLINK_THROUGHPUT_DATA_RX 139
#define GPM_SAMPLE_MAGIC 0x67706d73u
#define MAX_GPM_SAMPLES 64
#define NVML_GPM_SUPPORT_VERSION 1u
#define NVML_GPM_METRICS_GET_VERSION 1u

/* GPM: opaque samples remember the device and the step they were taken at. */
typedef struct fake_gpm_sample {
    unsigned int magic;
    int used, taken, step;
    const struct fake_dev *dev;
} fake_gpm_sample_t;
typedef fake_gpm_sample_t *nvmlGpmSample_t;

typedef struct {
    unsigned int version;
    unsigned int isSupportedDevice;
} nvmlGpmSupport_t;

typedef struct {
    const char *shortName;
    const char *longName;
    const char *unit;
} nvmlGpmMetricInfo_t;

typedef struct {
    unsigned int metricId;
    unsigned int nvmlReturn;
    double value;
    nvmlGpmMetricInfo_t metricInfo;
} nvmlGpmMetric_t;

/* pynvml declares metrics[NVML_GPM_METRIC_MAX]; the fake touches only the first numMetrics. */
typedef struct {
    unsigned int version;
    unsigned int numMetrics;
    nvmlGpmSample_t sample1;
    nvmlGpmSample_t sample2;
    nvmlGpmMetric_t metrics[1];
} nvmlGpmMetricsGet_t;

typedef struct {
    unsigned long long referenceTime;
    unsigned long long violationTime;
} nvmlViolationTime_t;
#define FI_MEMORY_TEMP 82
#define FI_PCIE_REPLAY 94
#define FI_POWER_AVERAGE 185
#define FI_POWER_INSTANT 186

/* ---- the scenario model ---- */

#define FAKE_FUNCTIONS(X)                                                                                 \
    X(nvmlInit_v2) X(nvmlInitWithFlags) X(nvmlShutdown) X(nvmlErrorString) X(nvmlSystemGetDriverVersion) \
    X(nvmlSystemGetProcessName) X(nvmlDeviceGetCount_v2) X(nvmlDeviceGetHandleByIndex_v2)                 \
    X(nvmlDeviceGetHandleByUUID) X(nvmlDeviceGetName) X(nvmlDeviceGetUUID) X(nvmlDeviceGetPciInfo_v3)    \
    X(nvmlDeviceGetUtilizationRates) X(nvmlDeviceGetEncoderUtilization)                                  \
    X(nvmlDeviceGetDecoderUtilization) X(nvmlDeviceGetMemoryInfo) X(nvmlDeviceGetMemoryInfo_v2)          \
    X(nvmlDeviceGetPowerUsage) X(nvmlDeviceGetEnforcedPowerLimit) X(nvmlDeviceGetTotalEnergyConsumption) \
    X(nvmlDeviceGetTemperature) X(nvmlDeviceGetClockInfo) X(nvmlDeviceGetFieldValues)                    \
    X(nvmlDeviceGetPcieThroughput) X(nvmlDeviceGetPcieReplayCounter) X(nvmlDeviceGetFanSpeed)            \
    X(nvmlDeviceGetCurrentClocksEventReasons) X(nvmlDeviceGetCurrentClocksThrottleReasons)               \
    X(nvmlDeviceGetTotalEccErrors) X(nvmlDeviceGetRemappedRows) X(nvmlDeviceGetRetiredPages)             \
    X(nvmlDeviceGetRetiredPagesPendingStatus) X(nvmlDeviceGetMigMode) X(nvmlDeviceGetMaxMigDeviceCount)  \
    X(nvmlDeviceGetMigDeviceHandleByIndex) X(nvmlDeviceGetGpuInstanceId)                                 \
    X(nvmlDeviceGetComputeInstanceId) X(nvmlDeviceIsMigDeviceHandle)                                     \
    X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle) X(nvmlDeviceGetComputeRunningProcesses_v3)           \
    X(nvmlDeviceGetProcessesUtilizationInfo) X(nvmlEventSetCreate) X(nvmlDeviceRegisterEvents)           \
    X(nvmlEventSetWait_v2) X(nvmlEventSetFree) X(nvmlDeviceGetViolationStatus)                           \
    X(nvmlGpmQueryDeviceSupport) X(nvmlGpmSampleAlloc) X(nvmlGpmSampleFree) X(nvmlGpmSampleGet)          \
    X(nvmlGpmMetricsGet) X(nvmlDeviceGetPowerManagementLimit) X(nvmlDeviceGetTemperatureV)                 \
    X(nvmlDeviceGetGraphicsRunningProcesses_v3) X(nvmlSystemGetCudaDriverVersion)                       \
    X(nvmlDeviceGetProcessUtilization)

#define AS_ENUM(name) FN_##name,
#define AS_NAME(name) #name,
enum { FAKE_FUNCTIONS(AS_ENUM) FN_COUNT };
static const char *const FN_NAMES[] = {FAKE_FUNCTIONS(AS_NAME)};

/* id, scenario key, default; a negative default means "derived" (see field_value). */
#define FAKE_FIELDS(X)                                            \
    X(F_UTIL_GPU, "utilization_gpu", 50)                          \
    X(F_UTIL_MEM, "utilization_memory", 30)                       \
    X(F_ENC, "encoder_utilization", 0)                            \
    X(F_DEC, "decoder_utilization", 0)                            \
    X(F_MEM_TOTAL, "memory_total", 85520809984.0)                 \
    X(F_MEM_USED, "memory_used", 1073741824.0)                    \
    X(F_MEM_RESERVED, "memory_reserved", 536870912.0)             \
    X(F_POWER, "power_mw", 300000)                                \
    X(F_POWER_INSTANT, "power_instant_mw", -1)                    \
    X(F_POWER_LIMIT, "power_limit_mw", 700000)                    \
    X(F_ENERGY, "energy_mj", -1)                                  \
    X(F_TEMP, "temperature", 45)                                  \
    X(F_MEM_TEMP, "memory_temperature", 50)                       \
    X(F_SM_CLOCK, "sm_clock_mhz", 1980)                           \
    X(F_MEM_CLOCK, "memory_clock_mhz", 2619)                      \
    X(F_PCIE_TX, "pcie_tx_kbps", 1000)                            \
    X(F_PCIE_RX, "pcie_rx_kbps", 2000)                            \
    X(F_PCIE_REPLAY, "pcie_replay", 0)                            \
    X(F_FAN, "fan_speed", 30)                                     \
    X(F_CLOCK_REASONS, "clock_event_reasons", 0)                  \
    X(F_ECC_CORR, "ecc_corrected", 0)                             \
    X(F_ECC_UNCORR, "ecc_uncorrected", 0)                         \
    X(F_REMAP_CORR, "remapped_correctable", 0)                    \
    X(F_REMAP_UNC, "remapped_uncorrectable", 0)                   \
    X(F_REMAP_PENDING, "remapped_pending", 0)                     \
    X(F_REMAP_FAILURE, "remapped_failure", 0)                     \
    X(F_RETIRED_SBE, "retired_pages_sbe", 0)                      \
    X(F_RETIRED_DBE, "retired_pages_dbe", 0)                      \
    X(F_RETIRED_PENDING, "retired_pages_pending", 0)              \
    X(F_MIG_MODE, "mig_mode", 0)                                  \
    X(F_MIG_PENDING, "mig_pending", -1)                           \
    X(F_MAX_MIG, "max_mig_devices", 7)                            \
    X(F_XID_EVENTS, "xid_events", 1)                              \
    X(F_PROCESS_UTIL, "process_utilization", 1)                   \
    X(F_GI, "gpu_instance_id", 0)                                 \
    X(F_CI, "compute_instance_id", 0)                             \
    X(F_NVLINK_TX, "nvlink_tx_kib", 0)                            \
    X(F_NVLINK_RX, "nvlink_rx_kib", 0)                            \
    X(F_NVLINK_CRC_FLIT, "nvlink_crc_flit_errors", 0)             \
    X(F_NVLINK_CRC_DATA, "nvlink_crc_data_errors", 0)             \
    X(F_NVLINK_REPLAY, "nvlink_replay_errors", 0)                 \
    X(F_NVLINK_RECOVERY, "nvlink_recovery_errors", 0)             \
    X(F_VIOL_POWER, "violation_power_ns", 0)                      \
    X(F_VIOL_THERMAL, "violation_thermal_ns", 0)                  \
    X(F_VIOL_SYNC_BOOST, "violation_sync_boost_ns", 0)            \
    X(F_VIOL_BOARD_LIMIT, "violation_board_limit_ns", 0)          \
    X(F_VIOL_LOW_UTIL, "violation_low_utilization_ns", 0)         \
    X(F_VIOL_RELIABILITY, "violation_reliability_ns", 0)          \
    X(F_VIOL_APP_CLOCKS, "violation_app_clocks_ns", 0)            \
    X(F_VIOL_BASE_CLOCKS, "violation_base_clocks_ns", 0)          \
    X(F_GPM, "gpm", 0)                                            \
    X(F_GPM_SM_ACTIVE, "gpm_sm_active", 0)                        \
    X(F_GPM_SM_OCCUPANCY, "gpm_sm_occupancy", 0)                  \
    X(F_GPM_TENSOR_ACTIVE, "gpm_tensor_active", 0)                \
    X(F_GPM_DRAM_BW, "gpm_dram_bw", 0)                            \
    X(F_GPM_PCIE_TX, "gpm_pcie_tx_mibps", 0)                      \
    X(F_GPM_PCIE_RX, "gpm_pcie_rx_mibps", 0)                      \
    X(F_GPM_NVLINK_TX, "gpm_nvlink_tx_mibps", 0)                  \
    X(F_GPM_NVLINK_RX, "gpm_nvlink_rx_mibps", 0)

#define F_ENUM(id, key, def) id,
#define F_KEY(id, key, def) key,
#define F_DEF(id, key, def) (double)(def),
enum { FAKE_FIELDS(F_ENUM) N_FIELDS };
static const char *const FIELD_KEYS[] = {FAKE_FIELDS(F_KEY)};
static const double FIELD_DEFAULTS[] = {FAKE_FIELDS(F_DEF)};

enum { UNSET = 0, SET = 1, UNSUPPORTED = 2 };

typedef struct {
    int state;
    int n;
    double v[MAX_SERIES];
} series_t;

typedef struct {
    unsigned int pid;
    double memory;
    int sm;     /* percent, or -1: no utilization sample */
    int memutil;
} proc_t;

typedef struct fake_dev {
    unsigned int magic;
    int index, is_mig, slot;
    struct fake_dev *parent;
    char name[96], uuid[96], bus_id[32];
    series_t f[N_FIELDS];
    int procs_set, nproc;
    proc_t procs[MAX_PROC];
} fake_dev_t;

typedef struct {
    int dev; /* -1: every device; -2: every call, with or without a device */
    int fn;  /* -1: every function */
    int code;
    int from, to;
} rule_t;

typedef struct {
    int dev;
    unsigned long long code;
    int step;
} xid_t;

typedef struct {
    unsigned int pid;
    char name[64];
} pname_t;

typedef struct fake_evset {
    unsigned int magic;
    int used;
    unsigned long long registered[MAX_DEV];
    int delivered[MAX_XID];
} fake_evset_t;

static fake_dev_t g_dev[MAX_DEV];
static fake_dev_t g_mig[MAX_DEV][MAX_MIG];
static fake_dev_t g_tmpl;          /* "gpu*" settings */
static fake_dev_t g_tmpl_mig[MAX_MIG];
static int g_nmig[MAX_DEV], g_tmpl_nmig;
static int g_ndev = 1;
static rule_t g_rules[MAX_RULES];
static int g_nrules;
static xid_t g_xids[MAX_XID];
static int g_nxids;
static pname_t g_pnames[MAX_NAMES];
static int g_npnames;
static fake_evset_t g_sets[MAX_SETS];
static fake_gpm_sample_t g_gpm[MAX_GPM_SAMPLES];
static char g_driver_version[80] = "fake-570.00";
static int g_init_error;
static int g_loaded;
static int g_init;
static int g_step;
static long g_calls[FN_COUNT];
static int g_last_wait_timeout = -1;
static char g_error[512];

/* ---- values ---- */

static const series_t *resolve(const fake_dev_t *d, int f) {
    if (d->f[f].state != UNSET) return &d->f[f];
    const fake_dev_t *t = d->is_mig ? &g_tmpl_mig[d->slot] : &g_tmpl;
    if (t->f[f].state != UNSET) return &t->f[f];
    return NULL;
}

static double series_at(const series_t *s, int step) { return s->v[step < s->n ? step : s->n - 1]; }

static int field_value(const fake_dev_t *d, int f, double *out) {
    const series_t *s = resolve(d, f);
    if (s && s->state == UNSUPPORTED) return NVML_ERROR_NOT_SUPPORTED;
    if (s) {
        *out = series_at(s, g_step);
        return NVML_SUCCESS;
    }
    if (d->is_mig) {
        /* NVML reports utilization of a MIG device as not supported; memory is per instance. */
        if (f == F_UTIL_GPU || f == F_UTIL_MEM) return NVML_ERROR_NOT_SUPPORTED;
        if (f == F_MEM_TOTAL) { *out = 10737418240.0; return NVML_SUCCESS; }
        if (f == F_MEM_USED) { *out = 0; return NVML_SUCCESS; }
        if (f == F_MEM_RESERVED) { *out = 0; return NVML_SUCCESS; }
    }
    switch (f) {
    case F_POWER_INSTANT: return field_value(d, F_POWER, out);
    case F_MIG_PENDING: return field_value(d, F_MIG_MODE, out);
    case F_ENERGY: {
        /* Accumulated from power over one-second steps, from 1 kJ at step 0. */
        const series_t *p = resolve(d, F_POWER);
        double total = 1e6;
        if (p == NULL) {
            total += FIELD_DEFAULTS[F_POWER] * g_step;
        } else if (p->state == SET) {
            for (int k = 0; k < g_step; k++) {
                if (k >= p->n) { total += p->v[p->n - 1] * (g_step - k); break; }
                total += p->v[k];
            }
        }
        *out = total;
        return NVML_SUCCESS;
    }
    default: *out = FIELD_DEFAULTS[f]; return NVML_SUCCESS;
    }
}

static const char *dev_name(const fake_dev_t *d) {
    static char buf[96];
    if (d->name[0]) return d->name;
    if (d->is_mig) {
        if (g_tmpl_mig[d->slot].name[0]) return g_tmpl_mig[d->slot].name;
        snprintf(buf, sizeof buf, "%s MIG 1g.10gb", dev_name(d->parent));
        return buf;
    }
    if (g_tmpl.name[0]) return g_tmpl.name;
    return "NVIDIA H100 80GB HBM3";
}

static void dev_uuid(const fake_dev_t *d, char *out, size_t n) {
    if (d->uuid[0]) snprintf(out, n, "%s", d->uuid);
    else if (d->is_mig) snprintf(out, n, "MIG-00000000-0000-4000-8000-%06d%06d", d->parent->index, d->slot);
    else snprintf(out, n, "GPU-00000000-0000-4000-8000-%012d", d->index);
}

static void dev_bus_id(const fake_dev_t *d, char *out, size_t n) {
    if (d->bus_id[0]) snprintf(out, n, "%s", d->bus_id);
    else snprintf(out, n, "00000000:%02X:00.0", (unsigned)(0x18 + 0x10 * d->index) & 0xffu);
}

static int nmig_of(int index) { return g_nmig[index] > g_tmpl_nmig ? g_nmig[index] : g_tmpl_nmig; }

static const fake_dev_t *procs_of(const fake_dev_t *d) {
    if (d->procs_set) return d;
    const fake_dev_t *t = d->is_mig ? &g_tmpl_mig[d->slot] : &g_tmpl;
    return t->procs_set ? t : d;
}

/* ---- call accounting and error injection ---- */

static int device_ok(const fake_dev_t *d) { return d != NULL && d->magic == DEV_MAGIC; }

static int check(int fn, const fake_dev_t *d) {
    g_calls[fn]++;
    if (!g_init) return NVML_ERROR_UNINITIALIZED;
    if (d != NULL && !device_ok(d)) return NVML_ERROR_INVALID_ARGUMENT;
    int index = d == NULL ? -1 : (d->is_mig ? d->parent->index : d->index);
    for (int i = 0; i < g_nrules; i++) {
        const rule_t *r = &g_rules[i];
        if (r->fn != -1 && r->fn != fn) continue;
        if (r->dev != -2 && (d == NULL || (r->dev != -1 && r->dev != index))) continue;
        if (g_step < r->from || (r->to >= 0 && g_step > r->to)) continue;
        return r->code;
    }
    return NVML_SUCCESS;
}

#define CHECK(fn, d)                           \
    do {                                       \
        int rc_ = check(FN_##fn, (d));         \
        if (rc_ != NVML_SUCCESS) return rc_;   \
    } while (0)

#define VALUE(d, f, var)                                   \
    double var;                                            \
    do {                                                   \
        int rc_ = field_value((d), (f), &var);             \
        if (rc_ != NVML_SUCCESS) return rc_;               \
    } while (0)

#define NOT_ON_MIG(d) \
    if ((d)->is_mig) return NVML_ERROR_NOT_SUPPORTED

/* ---- scenario parsing ---- */

static const struct { const char *name; int code; } ERROR_NAMES[] = {
    {"Success", 0},          {"Uninitialized", 1},       {"InvalidArgument", 2},
    {"NotSupported", 3},     {"NoPermission", 4},        {"AlreadyInitialized", 5},
    {"NotFound", 6},         {"InsufficientSize", 7},    {"InsufficientPower", 8},
    {"DriverNotLoaded", 9},  {"Timeout", 10},            {"IrqIssue", 11},
    {"LibraryNotFound", 12}, {"FunctionNotFound", 13},   {"CorruptedInforom", 14},
    {"GpuIsLost", 15},       {"ResetRequired", 16},      {"OperatingSystem", 17},
    {"LibRmVersionMismatch", 18}, {"InUse", 19},         {"Memory", 20},
    {"NoData", 21},          {"ArgumentVersionMismatch", 25}, {"NotReady", 27},
    {"Unknown", 999},
};

static int fail(const char *path, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(g_error, sizeof g_error, "%s:%d: %s", path, line, msg);
    return -1;
}

static int error_code(const char *name) {
    for (size_t i = 0; i < sizeof ERROR_NAMES / sizeof ERROR_NAMES[0]; i++)
        if (strcmp(ERROR_NAMES[i].name, name) == 0) return ERROR_NAMES[i].code;
    return -1;
}

static int function_id(const char *name) {
    for (int i = 0; i < FN_COUNT; i++)
        if (strcmp(FN_NAMES[i], name) == 0) return i;
    return -1;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) *--end = '\0';
    return s;
}

static int parse_int(const char *s, long *out) {
    char *end;
    *out = strtol(s, &end, 10);
    return end != s && *end == '\0';
}

/* "v v v", "v*count", or "unsupported" */
static int parse_series(char *value, series_t *s, const char *path, int line) {
    if (strcmp(value, "unsupported") == 0) {
        s->state = UNSUPPORTED;
        s->n = 0;
        return 0;
    }
    s->state = SET;
    s->n = 0;
    for (char *tok = strtok(value, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        char *end;
        double v = strtod(tok, &end);
        long count = 1;
        if (end == tok) return fail(path, line, "expected a number, a series of numbers or 'unsupported', got '%s'", tok);
        if (*end == '*') {
            if (!parse_int(end + 1, &count) || count < 1)
                return fail(path, line, "expected VALUE*COUNT with a positive count, got '%s'", tok);
        } else if (*end != '\0') {
            return fail(path, line, "expected a number, got '%s'", tok);
        }
        for (long i = 0; i < count; i++) {
            if (s->n >= MAX_SERIES) return fail(path, line, "a series holds at most %d values", MAX_SERIES);
            s->v[s->n++] = v;
        }
    }
    if (s->n == 0) return fail(path, line, "expected at least one value");
    return 0;
}

/* "pid:memory_bytes[:sm_percent[:mem_percent]]" ... */
static int parse_processes(char *value, fake_dev_t *d, const char *path, int line) {
    d->procs_set = 1;
    d->nproc = 0;
    for (char *tok = strtok(value, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        unsigned long pid;
        double mem;
        int sm = -1, mu = 0;
        int got = sscanf(tok, "%lu:%lf:%d:%d", &pid, &mem, &sm, &mu);
        if (got < 2) return fail(path, line, "expected PID:MEMORY_BYTES[:SM_PERCENT[:MEM_PERCENT]], got '%s'", tok);
        if (d->nproc >= MAX_PROC) return fail(path, line, "at most %d processes per device", MAX_PROC);
        d->procs[d->nproc++] = (proc_t){(unsigned)pid, mem, sm, mu};
    }
    return 0;
}

/* "CODE@STEP ..." */
static int parse_xids(char *value, int dev, const char *path, int line) {
    for (char *tok = strtok(value, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        unsigned long long code;
        int step = 0;
        if (sscanf(tok, "%llu@%d", &code, &step) < 1) return fail(path, line, "expected XID@STEP, got '%s'", tok);
        if (g_nxids >= MAX_XID) return fail(path, line, "at most %d XID events", MAX_XID);
        g_xids[g_nxids++] = (xid_t){dev, code, step};
    }
    return 0;
}

/* "FUNCTION|* ERROR [FROM_STEP [TO_STEP]]" */
static int parse_rule(char *value, int dev, const char *path, int line) {
    char fn[96], err[64];
    int from = 0, to = -1;
    int got = sscanf(value, "%95s %63s %d %d", fn, err, &from, &to);
    if (got < 2) return fail(path, line, "expected FUNCTION ERROR [FROM_STEP [TO_STEP]], got '%s'", value);
    int fid = strcmp(fn, "*") == 0 ? -1 : function_id(fn);
    if (fid == -2 || (fid == -1 && strcmp(fn, "*") != 0)) return fail(path, line, "unknown NVML function '%s'", fn);
    int code = error_code(err);
    if (code < 0) return fail(path, line, "unknown NVML error '%s' (use e.g. GpuIsLost, NotSupported, NoPermission, Unknown)", err);
    if (g_nrules >= MAX_RULES) return fail(path, line, "at most %d error rules", MAX_RULES);
    g_rules[g_nrules++] = (rule_t){dev, fid, code, from, to};
    return 0;
}

static int set_device_key(fake_dev_t *d, int dev, const char *field, char *value, const char *path, int line) {
    if (strcmp(field, "name") == 0) { snprintf(d->name, sizeof d->name, "%s", value); return 0; }
    if (strcmp(field, "uuid") == 0) { snprintf(d->uuid, sizeof d->uuid, "%s", value); return 0; }
    if (strcmp(field, "pci_bus_id") == 0) { snprintf(d->bus_id, sizeof d->bus_id, "%s", value); return 0; }
    if (strcmp(field, "processes") == 0) return parse_processes(value, d, path, line);
    if (strcmp(field, "xid") == 0) {
        if (d->is_mig) return fail(path, line, "XID events belong to a GPU, not a MIG device");
        return parse_xids(value, dev, path, line);
    }
    if (strcmp(field, "error") == 0) {
        if (d->is_mig) return fail(path, line, "errors are injected per GPU (they also apply to its MIG devices)");
        return parse_rule(value, dev, path, line);
    }
    for (int f = 0; f < N_FIELDS; f++)
        if (strcmp(field, FIELD_KEYS[f]) == 0) return parse_series(value, &d->f[f], path, line);
    return fail(path, line, "unknown device key '%s'", field);
}

static int parse_line(char *key, char *value, const char *path, int line, int *max_index) {
    long n;
    if (strcmp(key, "devices") == 0) {
        if (!parse_int(value, &n) || n < 0 || n > MAX_DEV)
            return fail(path, line, "devices: expected 0..%d, got '%s'", MAX_DEV, value);
        g_ndev = (int)n;
        return 0;
    }
    if (strcmp(key, "init_error") == 0) {
        g_init_error = error_code(value);
        if (g_init_error < 0) return fail(path, line, "unknown NVML error '%s'", value);
        return 0;
    }
    if (strcmp(key, "driver_version") == 0) {
        snprintf(g_driver_version, sizeof g_driver_version, "%s", value);
        return 0;
    }
    if (strcmp(key, "error") == 0) return parse_rule(value, -2, path, line);
    if (strncmp(key, "process.", 8) == 0) {
        char *dot = strrchr(key, '.');
        unsigned long pid;
        if (dot == key + 7 || strcmp(dot, ".name") != 0 || sscanf(key + 8, "%lu", &pid) != 1)
            return fail(path, line, "expected process.PID.name, got '%s'", key);
        if (g_npnames >= MAX_NAMES) return fail(path, line, "at most %d process names", MAX_NAMES);
        g_pnames[g_npnames].pid = (unsigned)pid;
        snprintf(g_pnames[g_npnames].name, sizeof g_pnames[g_npnames].name, "%s", value);
        g_npnames++;
        return 0;
    }
    if (strncmp(key, "gpu", 3) != 0) return fail(path, line, "unknown key '%s'", key);
    const char *p = key + 3;
    int dev;
    if (*p == '*') {
        dev = -1;
        p++;
    } else {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= MAX_DEV) return fail(path, line, "expected gpu* or gpuN with N < %d in '%s'", MAX_DEV, key);
        dev = (int)v;
        if (dev > *max_index) *max_index = dev;
        p = end;
    }
    if (*p != '.') return fail(path, line, "expected gpuN.FIELD, got '%s'", key);
    p++;
    fake_dev_t *d = dev < 0 ? &g_tmpl : &g_dev[dev];
    if (strncmp(p, "mig", 3) == 0 && isdigit((unsigned char)p[3])) {
        char *end;
        long slot = strtol(p + 3, &end, 10);
        if (slot >= MAX_MIG || *end != '.') return fail(path, line, "expected gpuN.migM.FIELD with M < %d, got '%s'", MAX_MIG, key);
        int *count = dev < 0 ? &g_tmpl_nmig : &g_nmig[dev];
        if (slot + 1 > *count) *count = (int)slot + 1;
        d = dev < 0 ? &g_tmpl_mig[slot] : &g_mig[dev][slot];
        p = end + 1;
    }
    char field[128];
    snprintf(field, sizeof field, "%s", p);
    return set_device_key(d, dev, field, value, path, line);
}

static void reset_state(void) {
    memset(g_dev, 0, sizeof g_dev);
    memset(g_mig, 0, sizeof g_mig);
    memset(&g_tmpl, 0, sizeof g_tmpl);
    memset(g_tmpl_mig, 0, sizeof g_tmpl_mig);
    memset(g_nmig, 0, sizeof g_nmig);
    memset(g_sets, 0, sizeof g_sets);
    memset(g_gpm, 0, sizeof g_gpm);
    memset(g_calls, 0, sizeof g_calls);
    g_tmpl_nmig = 0;
    g_ndev = 1;
    g_nrules = g_nxids = g_npnames = 0;
    g_init_error = 0;
    g_step = 0;
    g_last_wait_timeout = -1;
    snprintf(g_driver_version, sizeof g_driver_version, "fake-570.00");
    g_error[0] = '\0';
}

static void link_devices(void) {
    for (int i = 0; i < MAX_DEV; i++) {
        g_dev[i].magic = DEV_MAGIC;
        g_dev[i].index = i;
        for (int m = 0; m < MAX_MIG; m++) {
            g_mig[i][m].magic = DEV_MAGIC;
            g_mig[i][m].index = i;
            g_mig[i][m].is_mig = 1;
            g_mig[i][m].slot = m;
            g_mig[i][m].parent = &g_dev[i];
        }
    }
    for (int m = 0; m < MAX_MIG; m++) {
        g_tmpl_mig[m].is_mig = 1;
        g_tmpl_mig[m].slot = m;
    }
}

static int load_file(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return fail(path, 0, "cannot open the scenario file");
    char buf[4096];
    int line = 0, max_index = -1, rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, fp)) {
        line++;
        char *hash = strchr(buf, '#');
        if (hash) *hash = '\0';
        char *text = trim(buf);
        if (!*text) continue;
        char *eq = strchr(text, '=');
        if (!eq) {
            rc = fail(path, line, "expected KEY = VALUE, got '%s'", text);
            break;
        }
        *eq = '\0';
        rc = parse_line(trim(text), trim(eq + 1), path, line, &max_index);
    }
    fclose(fp);
    if (rc == 0 && max_index >= g_ndev)
        rc = fail(path, line, "gpu%d is configured but devices = %d", max_index, g_ndev);
    return rc;
}

/* ---- control API (not part of NVML) ---- */

API int fakenvml_load(const char *path) {
    reset_state();
    link_devices();
    g_loaded = 1;
    if (path == NULL || *path == '\0') return 0;
    if (load_file(path) != 0) {
        char saved[sizeof g_error];
        memcpy(saved, g_error, sizeof saved);
        reset_state();
        link_devices();
        memcpy(g_error, saved, sizeof saved);
        return -1;
    }
    return 0;
}

/* Behave like a host without NVIDIA driver: nvmlInit fails with LibraryNotFound until the next load. */
API void fakenvml_disarm(void) {
    reset_state();
    link_devices();
    g_loaded = 1;
    g_init = 0;
    g_init_error = 12; /* NVML_ERROR_LIBRARY_NOT_FOUND */
}

API const char *fakenvml_error(void) { return g_error; }
API int fakenvml_step(int n) { return g_step += n; }
API int fakenvml_get_step(void) { return g_step; }
API int fakenvml_last_wait_timeout(void) { return g_last_wait_timeout; }
API int fakenvml_init_count(void) { return g_init; }

API long fakenvml_calls(const char *fn) {
    if (fn == NULL) {
        long total = 0;
        for (int i = 0; i < FN_COUNT; i++) total += g_calls[i];
        return total;
    }
    int id = function_id(fn);
    return id < 0 ? -1 : g_calls[id];
}

API void fakenvml_reset_calls(void) { memset(g_calls, 0, sizeof g_calls); }

/* ---- NVML ---- */

static nvmlReturn_t do_init(int fn) {
    g_calls[fn]++;
    if (!g_loaded) {
        const char *path = getenv("FAKENVML_SCENARIO");
        if (fakenvml_load(path) != 0) {
            fprintf(stderr, "fakenvml: %s\n", g_error);
            return NVML_ERROR_UNKNOWN;
        }
    }
    if (g_init_error) return g_init_error;
    g_init++;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlInit_v2(void) { return do_init(FN_nvmlInit_v2); }
API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return do_init(FN_nvmlInitWithFlags);
}

API nvmlReturn_t nvmlShutdown(void) {
    g_calls[FN_nvmlShutdown]++;
    if (!g_init) return NVML_ERROR_UNINITIALIZED;
    g_init--;
    return NVML_SUCCESS;
}

API const char *nvmlErrorString(nvmlReturn_t result) {
    for (size_t i = 0; i < sizeof ERROR_NAMES / sizeof ERROR_NAMES[0]; i++)
        if (ERROR_NAMES[i].code == result) return ERROR_NAMES[i].name;
    return "Unknown Error";
}

API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    CHECK(nvmlSystemGetDriverVersion, NULL);
    if (strlen(g_driver_version) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(version, length, "%s", g_driver_version);
    return NVML_SUCCESS;
}

/* CUDA 12.8, what the 570 drivers report (the fake's default and scenario drivers are 570). */
API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    CHECK(nvmlSystemGetCudaDriverVersion, NULL);
    if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *version = 12080;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length) {
    CHECK(nvmlSystemGetProcessName, NULL);
    for (int i = 0; i < g_npnames; i++) {
        if (g_pnames[i].pid == pid) {
            snprintf(name, length, "%s", g_pnames[i].name);
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    CHECK(nvmlDeviceGetCount_v2, NULL);
    *count = (unsigned)g_ndev;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (index >= (unsigned)g_ndev) {
        g_calls[FN_nvmlDeviceGetHandleByIndex_v2]++;
        return g_init ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_UNINITIALIZED;
    }
    CHECK(nvmlDeviceGetHandleByIndex_v2, &g_dev[index]);
    *device = &g_dev[index];
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    char buf[96];
    for (int i = 0; i < g_ndev; i++) {
        dev_uuid(&g_dev[i], buf, sizeof buf);
        if (strcmp(buf, uuid) == 0) {
            CHECK(nvmlDeviceGetHandleByUUID, &g_dev[i]);
            *device = &g_dev[i];
            return NVML_SUCCESS;
        }
    }
    CHECK(nvmlDeviceGetHandleByUUID, NULL);
    return NVML_ERROR_NOT_FOUND;
}

API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    CHECK(nvmlDeviceGetName, d);
    const char *n = dev_name(d);
    if (strlen(n) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(name, length, "%s", n);
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    CHECK(nvmlDeviceGetUUID, d);
    char buf[96];
    dev_uuid(d, buf, sizeof buf);
    if (strlen(buf) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(uuid, length, "%s", buf);
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci) {
    CHECK(nvmlDeviceGetPciInfo_v3, d);
    NOT_ON_MIG(d);
    char buf[32];
    unsigned domain = 0, bus = 0, device = 0, function = 0;
    dev_bus_id(d, buf, sizeof buf);
    sscanf(buf, "%x:%x:%x.%x", &domain, &bus, &device, &function);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", buf);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%s", buf + (strlen(buf) > 12 ? 4 : 0));
    pci->domain = domain;
    pci->bus = bus;
    pci->device = device;
    pci->pciDeviceId = 0x233010DEu;
    pci->pciSubSystemId = 0x16C110DEu;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    CHECK(nvmlDeviceGetUtilizationRates, d);
    VALUE(d, F_UTIL_GPU, gpu);
    VALUE(d, F_UTIL_MEM, mem);
    u->gpu = (unsigned)gpu;
    u->memory = (unsigned)mem;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *util, unsigned int *period) {
    CHECK(nvmlDeviceGetEncoderUtilization, d);
    NOT_ON_MIG(d);
    VALUE(d, F_ENC, v);
    *util = (unsigned)v;
    *period = 167000;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *util, unsigned int *period) {
    CHECK(nvmlDeviceGetDecoderUtilization, d);
    NOT_ON_MIG(d);
    VALUE(d, F_DEC, v);
    *util = (unsigned)v;
    *period = 167000;
    return NVML_SUCCESS;
}

static double free_bytes(double total, double used, double reserved) {
    double f = total - used - reserved;
    return f < 0 ? 0 : f;
}

API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    CHECK(nvmlDeviceGetMemoryInfo, d);
    VALUE(d, F_MEM_TOTAL, total);
    VALUE(d, F_MEM_USED, used);
    VALUE(d, F_MEM_RESERVED, reserved);
    /* v1 counts reserved memory as used */
    m->total = (unsigned long long)total;
    m->used = (unsigned long long)(used + reserved);
    m->free = (unsigned long long)free_bytes(total, used, reserved);
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    CHECK(nvmlDeviceGetMemoryInfo_v2, d);
    if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    VALUE(d, F_MEM_TOTAL, total);
    VALUE(d, F_MEM_USED, used);
    VALUE(d, F_MEM_RESERVED, reserved);
    m->total = (unsigned long long)total;
    m->reserved = (unsigned long long)reserved;
    m->used = (unsigned long long)used;
    m->free = (unsigned long long)free_bytes(total, used, reserved);
    return NVML_SUCCESS;
}

#define UINT_GETTER(fn, field)                                  \
    API nvmlReturn_t fn(nvmlDevice_t d, unsigned int *out) {    \
        CHECK(fn, d);                                           \
        NOT_ON_MIG(d);                                          \
        VALUE(d, field, v);                                     \
        *out = (unsigned)v;                                     \
        return NVML_SUCCESS;                                    \
    }

UINT_GETTER(nvmlDeviceGetPowerUsage, F_POWER)
UINT_GETTER(nvmlDeviceGetEnforcedPowerLimit, F_POWER_LIMIT)
UINT_GETTER(nvmlDeviceGetPowerManagementLimit, F_POWER_LIMIT) /* the fake models no limit below the enforced one */
UINT_GETTER(nvmlDeviceGetPcieReplayCounter, F_PCIE_REPLAY)
UINT_GETTER(nvmlDeviceGetFanSpeed, F_FAN)
UINT_GETTER(nvmlDeviceGetMaxMigDeviceCount, F_MAX_MIG)

API nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *energy) {
    CHECK(nvmlDeviceGetTotalEnergyConsumption, d);
    NOT_ON_MIG(d);
    VALUE(d, F_ENERGY, v);
    *energy = (unsigned long long)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *temp) {
    CHECK(nvmlDeviceGetTemperature, d);
    NOT_ON_MIG(d);
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, F_TEMP, v);
    *temp = (unsigned)v;
    return NVML_SUCCESS;
}

/* nvmlTemperature_v1_t as pynvml declares it: version, sensorType, temperature (signed). */
typedef struct {
    unsigned int version;
    int sensorType;
    int temperature;
} nvmlTemperature_v1_t;
#define nvmlTemperature_v1 ((unsigned)(sizeof(nvmlTemperature_v1_t) | (1u << 24)))

API nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t d, nvmlTemperature_v1_t *t) {
    CHECK(nvmlDeviceGetTemperatureV, d);
    NOT_ON_MIG(d);
    if (t == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (t->version != nvmlTemperature_v1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (t->sensorType != 0) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, F_TEMP, v);
    t->temperature = (int)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *clock) {
    CHECK(nvmlDeviceGetClockInfo, d);
    NOT_ON_MIG(d);
    int f = type == 1 ? F_SM_CLOCK : type == 2 ? F_MEM_CLOCK : type == 0 ? F_SM_CLOCK : -1;
    if (f < 0) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, f, v);
    *clock = (unsigned)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int count, nvmlFieldValue_t *values) {
    CHECK(nvmlDeviceGetFieldValues, d);
    if (count < 0 || (count > 0 && values == NULL)) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *fv = &values[i];
        int f;
        switch (fv->fieldId) {
        case FI_POWER_AVERAGE: f = F_POWER; break;
        case FI_POWER_INSTANT: f = F_POWER_INSTANT; break;
        case FI_MEMORY_TEMP: f = F_MEM_TEMP; break;
        case FI_PCIE_REPLAY: f = F_PCIE_REPLAY; break;
        case FI_NVLINK_CRC_FLIT_TOTAL: f = F_NVLINK_CRC_FLIT; break;
        case FI_NVLINK_CRC_DATA_TOTAL: f = F_NVLINK_CRC_DATA; break;
        case FI_NVLINK_REPLAY_TOTAL: f = F_NVLINK_REPLAY; break;
        case FI_NVLINK_RECOVERY_TOTAL: f = F_NVLINK_RECOVERY; break;
        case FI_NVLINK_THROUGHPUT_DATA_TX: f = F_NVLINK_TX; break;
        case FI_NVLINK_THROUGHPUT_DATA_RX: f = F_NVLINK_RX; break;
        default: f = -1;
        }
        /* Throughput counters are per link (scopeId) or summed over all links (scopeId UINT_MAX);
         * the fake models the sum only, so a per-link query is refused. */
        int wide = f == F_NVLINK_TX || f == F_NVLINK_RX;
        fv->timestamp = (long long)g_step * 1000000LL;
        fv->latencyUsec = 0;
        fv->valueType = wide ? 3 : 1; /* NVML_VALUE_TYPE_UNSIGNED_LONG_LONG : _UNSIGNED_INT */
        fv->value.ullVal = 0;
        if (f < 0 || d->is_mig || (wide && fv->scopeId != 0xFFFFFFFFu)) {
            fv->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        double v;
        fv->nvmlReturn = (unsigned)field_value(d, f, &v);
        if (fv->nvmlReturn != NVML_SUCCESS) continue;
        if (wide) fv->value.ullVal = (unsigned long long)v;
        else fv->value.uiVal = (unsigned)v;
    }
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned int *value) {
    CHECK(nvmlDeviceGetPcieThroughput, d);
    NOT_ON_MIG(d);
    if (counter != 0 && counter != 1) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, counter == 0 ? F_PCIE_TX : F_PCIE_RX, v);
    *value = (unsigned)v;
    return NVML_SUCCESS;
}

static nvmlReturn_t clock_reasons(nvmlDevice_t d, unsigned long long *reasons) {
    NOT_ON_MIG(d);
    VALUE(d, F_CLOCK_REASONS, v);
    *reasons = (unsigned long long)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *reasons) {
    CHECK(nvmlDeviceGetCurrentClocksEventReasons, d);
    return clock_reasons(d, reasons);
}

API nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *reasons) {
    CHECK(nvmlDeviceGetCurrentClocksThrottleReasons, d);
    return clock_reasons(d, reasons);
}

API nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int errorType, int counterType,
                                             unsigned long long *count) {
    CHECK(nvmlDeviceGetTotalEccErrors, d);
    NOT_ON_MIG(d);
    if ((errorType != 0 && errorType != 1) || (counterType != 0 && counterType != 1))
        return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, errorType == 0 ? F_ECC_CORR : F_ECC_UNCORR, v);
    *count = (unsigned long long)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                           unsigned int *pending, unsigned int *failure) {
    CHECK(nvmlDeviceGetRemappedRows, d);
    NOT_ON_MIG(d);
    VALUE(d, F_REMAP_CORR, c);
    VALUE(d, F_REMAP_UNC, u);
    VALUE(d, F_REMAP_PENDING, p);
    VALUE(d, F_REMAP_FAILURE, f);
    *corr = (unsigned)c;
    *unc = (unsigned)u;
    *pending = (unsigned)p;
    *failure = (unsigned)f;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t d, int cause, unsigned int *count,
                                           unsigned long long *addresses) {
    CHECK(nvmlDeviceGetRetiredPages, d);
    NOT_ON_MIG(d);
    if (cause != 0 && cause != 1) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, cause == 0 ? F_RETIRED_SBE : F_RETIRED_DBE, v);
    unsigned n = (unsigned)v;
    if (addresses == NULL || *count < n) {
        *count = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; i++) addresses[i] = 0x1000ull * (i + 1) + (unsigned long long)cause;
    *count = n;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int *pending) {
    CHECK(nvmlDeviceGetRetiredPagesPendingStatus, d);
    NOT_ON_MIG(d);
    VALUE(d, F_RETIRED_PENDING, v);
    *pending = (int)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending) {
    CHECK(nvmlDeviceGetMigMode, d);
    NOT_ON_MIG(d);
    VALUE(d, F_MIG_MODE, c);
    VALUE(d, F_MIG_PENDING, p);
    *current = (unsigned)c;
    *pending = (unsigned)p;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index, nvmlDevice_t *mig) {
    CHECK(nvmlDeviceGetMigDeviceHandleByIndex, d);
    if (d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, F_MIG_MODE, mode);
    VALUE(d, F_MAX_MIG, max);
    if (index >= (unsigned)max || index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
    if (mode != 1 || (int)index >= nmig_of(d->index)) return NVML_ERROR_NOT_FOUND;
    *mig = &g_mig[d->index][index];
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int *is_mig) {
    CHECK(nvmlDeviceIsMigDeviceHandle, d);
    *is_mig = (unsigned)d->is_mig;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t d, nvmlDevice_t *parent) {
    CHECK(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, d);
    if (!d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
    *parent = d->parent;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id) {
    CHECK(nvmlDeviceGetGpuInstanceId, d);
    if (!d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, F_GI, v);
    *id = (unsigned)v;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id) {
    CHECK(nvmlDeviceGetComputeInstanceId, d);
    if (!d->is_mig) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, F_CI, v);
    *id = (unsigned)v;
    return NVML_SUCCESS;
}

static int collect_procs(const fake_dev_t *d, nvmlProcessInfo_v2_t *out, int cap) {
    int n = 0;
    const fake_dev_t *owners[1 + MAX_MIG];
    int nowners = 0;
    owners[nowners++] = d;
    if (!d->is_mig)
        for (int m = 0; m < nmig_of(d->index); m++) owners[nowners++] = &g_mig[d->index][m];
    for (int o = 0; o < nowners; o++) {
        const fake_dev_t *src = procs_of(owners[o]);
        unsigned gi = 0xFFFFFFFFu, ci = 0xFFFFFFFFu;
        if (owners[o]->is_mig) {
            double v;
            if (field_value(owners[o], F_GI, &v) == NVML_SUCCESS) gi = (unsigned)v;
            if (field_value(owners[o], F_CI, &v) == NVML_SUCCESS) ci = (unsigned)v;
        }
        for (int i = 0; i < src->nproc; i++) {
            if (out != NULL && n < cap)
                out[n] = (nvmlProcessInfo_v2_t){src->procs[i].pid, (unsigned long long)src->procs[i].memory, gi, ci};
            n++;
        }
    }
    return n;
}

API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                         nvmlProcessInfo_v2_t *infos) {
    CHECK(nvmlDeviceGetComputeRunningProcesses_v3, d);
    int n = collect_procs(d, NULL, 0);
    if (n == 0) {
        *count = 0;
        return NVML_SUCCESS;
    }
    if (infos == NULL || *count < (unsigned)n) {
        *count = (unsigned)n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *count = (unsigned)collect_procs(d, infos, (int)*count);
    return NVML_SUCCESS;
}

/* A serving host runs compute processes only: the graphics list is empty. */
API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                          nvmlProcessInfo_v2_t *infos) {
    CHECK(nvmlDeviceGetGraphicsRunningProcesses_v3, d);
    (void)infos;
    *count = 0;
    return NVML_SUCCESS;
}

/* How many of the device's processes report a utilization sample. */
static unsigned util_procs(const fake_dev_t *src) {
    unsigned n = 0;
    for (int i = 0; i < src->nproc; i++)
        if (src->procs[i].sm >= 0) n++;
    return n;
}

/* The older per-process sample API (nvitop uses it): the same samples as GetProcessesUtilizationInfo. */
API nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *samples,
                                                 unsigned int *count, unsigned long long lastSeenTimeStamp) {
    CHECK(nvmlDeviceGetProcessUtilization, d);
    NOT_ON_MIG(d);
    VALUE(d, F_PROCESS_UTIL, supported);
    if (!supported) return NVML_ERROR_NOT_SUPPORTED;
    unsigned long long now = (unsigned long long)(g_step + 1) * 1000000ull;
    const fake_dev_t *src = procs_of(d);
    unsigned n = util_procs(src);
    if (n == 0 || lastSeenTimeStamp >= now) return NVML_ERROR_NOT_FOUND;
    if (samples == NULL || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsigned k = 0;
    for (int i = 0; i < src->nproc; i++) {
        const proc_t *p = &src->procs[i];
        if (p->sm < 0) continue;
        samples[k++] = (nvmlProcessUtilizationSample_t){p->pid, now, (unsigned)p->sm, (unsigned)p->memutil, 0, 0};
    }
    *count = k;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t d, nvmlProcessesUtilizationInfo_t *info) {
    CHECK(nvmlDeviceGetProcessesUtilizationInfo, d);
    NOT_ON_MIG(d);
    if (info->version != nvmlProcessesUtilizationInfo_v1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    VALUE(d, F_PROCESS_UTIL, supported);
    if (!supported) return NVML_ERROR_NOT_SUPPORTED;
    unsigned long long now = (unsigned long long)(g_step + 1) * 1000000ull;
    const fake_dev_t *src = procs_of(d);
    unsigned n = util_procs(src);
    if (n == 0 || info->lastSeenTimeStamp >= now) return NVML_ERROR_NOT_FOUND;
    if (info->procUtilArray == NULL || info->processSamplesCount < n) {
        info->processSamplesCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsigned k = 0;
    for (int i = 0; i < src->nproc; i++) {
        const proc_t *p = &src->procs[i];
        if (p->sm < 0) continue;
        info->procUtilArray[k++] = (nvmlProcessUtilizationInfo_v1_t){now, p->pid, (unsigned)p->sm,
                                                                     (unsigned)p->memutil, 0, 0, 0, 0};
    }
    info->processSamplesCount = k;
    info->lastSeenTimeStamp = now;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    CHECK(nvmlEventSetCreate, NULL);
    for (int i = 0; i < MAX_SETS; i++) {
        if (!g_sets[i].used) {
            memset(&g_sets[i], 0, sizeof g_sets[i]);
            g_sets[i].used = 1;
            g_sets[i].magic = SET_MAGIC;
            *set = &g_sets[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_UNKNOWN;
}

API nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
    CHECK(nvmlDeviceRegisterEvents, d);
    if (set == NULL || set->magic != SET_MAGIC || !set->used) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->is_mig) return NVML_ERROR_NOT_SUPPORTED;
    VALUE(d, F_XID_EVENTS, supported);
    if (!supported) return NVML_ERROR_NOT_SUPPORTED;
    set->registered[d->index] |= types;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
    g_last_wait_timeout = (int)timeoutms;
    CHECK(nvmlEventSetWait_v2, NULL);
    if (set == NULL || set->magic != SET_MAGIC || !set->used) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < g_nxids; i++) {
        const xid_t *x = &g_xids[i];
        if (set->delivered[i] || x->step > g_step || x->dev < 0 || x->dev >= g_ndev) continue;
        if (!(set->registered[x->dev] & NVML_EVENT_XID)) continue;
        set->delivered[i] = 1;
        data->device = &g_dev[x->dev];
        data->eventType = NVML_EVENT_XID;
        data->eventData = x->code;
        data->gpuInstanceId = 0xFFFFFFFFu;
        data->computeInstanceId = 0xFFFFFFFFu;
        return NVML_SUCCESS;
    }
    /* A real wait would block up to timeoutms; the collector always passes 0. */
    return NVML_ERROR_TIMEOUT;
}

API nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    CHECK(nvmlEventSetFree, NULL);
    if (set == NULL || set->magic != SET_MAGIC || !set->used) return NVML_ERROR_INVALID_ARGUMENT;
    set->used = 0;
    set->magic = 0;
    return NVML_SUCCESS;
}

/* ---- throttle time (violation status) ---- */

API nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t d, int policy, nvmlViolationTime_t *t) {
    CHECK(nvmlDeviceGetViolationStatus, d);
    NOT_ON_MIG(d);
    int f;
    switch (policy) {
    case 0: f = F_VIOL_POWER; break;
    case 1: f = F_VIOL_THERMAL; break;
    case 2: f = F_VIOL_SYNC_BOOST; break;
    case 3: f = F_VIOL_BOARD_LIMIT; break;
    case 4: f = F_VIOL_LOW_UTIL; break;
    case 5: f = F_VIOL_RELIABILITY; break;
    case 10: f = F_VIOL_APP_CLOCKS; break;
    case 11: f = F_VIOL_BASE_CLOCKS; break;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (t == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    VALUE(d, f, v);
    t->referenceTime = (unsigned long long)g_step * 1000000000ull;
    t->violationTime = (unsigned long long)v;
    return NVML_SUCCESS;
}

/* ---- GPM (Hopper and newer) ---- */

static int gpm_supported(const fake_dev_t *d) {
    double v;
    return !d->is_mig && field_value(d, F_GPM, &v) == NVML_SUCCESS && v != 0;
}

static int gpm_sample_ok(const fake_gpm_sample_t *s) {
    return s != NULL && s >= g_gpm && s < g_gpm + MAX_GPM_SAMPLES && s->magic == GPM_SAMPLE_MAGIC && s->used;
}

API nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t d, nvmlGpmSupport_t *support) {
    CHECK(nvmlGpmQueryDeviceSupport, d);
    if (support == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (support->version != NVML_GPM_SUPPORT_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    support->isSupportedDevice = (unsigned)gpm_supported(d);
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *sample) {
    CHECK(nvmlGpmSampleAlloc, NULL);
    if (sample == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < MAX_GPM_SAMPLES; i++) {
        if (!g_gpm[i].used) {
            memset(&g_gpm[i], 0, sizeof g_gpm[i]);
            g_gpm[i].magic = GPM_SAMPLE_MAGIC;
            g_gpm[i].used = 1;
            *sample = &g_gpm[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_UNKNOWN; /* the test leaks samples: NVML would run out of memory */
}

API nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t sample) {
    CHECK(nvmlGpmSampleFree, NULL);
    if (!gpm_sample_ok(sample)) return NVML_ERROR_INVALID_ARGUMENT;
    sample->used = 0;
    sample->magic = 0;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t d, nvmlGpmSample_t sample) {
    CHECK(nvmlGpmSampleGet, d);
    if (!gpm_sample_ok(sample)) return NVML_ERROR_INVALID_ARGUMENT;
    if (!gpm_supported(d)) return NVML_ERROR_NOT_SUPPORTED;
    sample->dev = d;
    sample->step = g_step;
    sample->taken = 1;
    return NVML_SUCCESS;
}

/* The mean of a field's series over the steps after `from` up to and including `to`: GPM metrics
 * describe the whole interval between the two samples. */
static int interval_mean(const fake_dev_t *d, int f, int from, int to, double *out) {
    const series_t *s = resolve(d, f);
    if (s && s->state == UNSUPPORTED) return NVML_ERROR_NOT_SUPPORTED;
    if (s == NULL) { *out = FIELD_DEFAULTS[f]; return NVML_SUCCESS; }
    if (to <= from) { *out = series_at(s, to); return NVML_SUCCESS; }
    double sum = 0;
    for (int k = from + 1; k <= to; k++) sum += series_at(s, k);
    *out = sum / (to - from);
    return NVML_SUCCESS;
}

static const struct { unsigned int id; int field; const char *name; const char *unit; } GPM_METRICS[] = {
    {2, F_GPM_SM_ACTIVE, "sm_util", "%"},
    {3, F_GPM_SM_OCCUPANCY, "sm_occupancy", "%"},
    {5, F_GPM_TENSOR_ACTIVE, "any_tensor_util", "%"},
    {10, F_GPM_DRAM_BW, "dram_bw_util", "%"},
    {20, F_GPM_PCIE_TX, "pcie_tx", "MiB/s"},
    {21, F_GPM_PCIE_RX, "pcie_rx", "MiB/s"},
    {60, F_GPM_NVLINK_RX, "nvlink_total_rx", "MiB/s"},
    {61, F_GPM_NVLINK_TX, "nvlink_total_tx", "MiB/s"},
};

API nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *request) {
    CHECK(nvmlGpmMetricsGet, NULL);
    if (request == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (request->version != NVML_GPM_METRICS_GET_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    const fake_gpm_sample_t *a = request->sample1, *b = request->sample2;
    if (!gpm_sample_ok(a) || !gpm_sample_ok(b) || !a->taken || !b->taken || a->dev != b->dev || b->step < a->step)
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = check(FN_nvmlGpmMetricsGet, a->dev); /* errors injected on the sampled GPU */
    g_calls[FN_nvmlGpmMetricsGet]--;
    if (rc != NVML_SUCCESS) return rc;
    for (unsigned i = 0; i < request->numMetrics; i++) {
        nvmlGpmMetric_t *m = &request->metrics[i];
        m->value = 0;
        m->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        m->metricInfo.shortName = m->metricInfo.longName = m->metricInfo.unit = NULL;
        for (size_t k = 0; k < sizeof GPM_METRICS / sizeof GPM_METRICS[0]; k++) {
            if (GPM_METRICS[k].id != m->metricId) continue;
            double v;
            m->nvmlReturn = (unsigned)interval_mean(a->dev, GPM_METRICS[k].field, a->step, b->step, &v);
            if (m->nvmlReturn == NVML_SUCCESS) m->value = v;
            m->metricInfo.shortName = m->metricInfo.longName = GPM_METRICS[k].name;
            m->metricInfo.unit = GPM_METRICS[k].unit;
        }
    }
    return NVML_SUCCESS;
}
