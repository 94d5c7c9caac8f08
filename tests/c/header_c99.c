/* etcd_sd.h on its own, compiled as strict C99 (-std=c99 -pedantic -Wall -Wextra -Werror).
 * Every function is assigned to a pointer of the type the API documents, so a signature
 * change in the generated header is a build error here. At run time it only checks the
 * version string and the result names (no etcd needed). */
#include "etcd_sd.h"

#include <stdio.h>
#include <string.h>

static void on_event(void *user_data, const char *key, size_t key_len, const char *value,
                     size_t value_len) {
    (void)user_data; (void)key; (void)key_len; (void)value; (void)value_len;
}

static void on_log(void *user_data, etcd_sd_log_level level, const char *message,
                   size_t message_len) {
    (void)user_data; (void)level; (void)message; (void)message_len;
}

int main(void) {
    etcd_sd_event_fn ev = on_event;
    etcd_sd_log_fn lg = on_log;

    etcd_sd_result (*options_new)(etcd_sd_options **) = etcd_sd_options_new;
    void (*options_free)(etcd_sd_options *) = etcd_sd_options_free;
    etcd_sd_result (*set_endpoints)(etcd_sd_options *, const char *) =
        etcd_sd_options_set_endpoints;
    etcd_sd_result (*set_ttl)(etcd_sd_options *, int64_t) = etcd_sd_options_set_ttl;
    etcd_sd_result (*set_connect)(etcd_sd_options *, uint64_t) =
        etcd_sd_options_set_connect_timeout_ms;
    etcd_sd_result (*set_request)(etcd_sd_options *, uint64_t) =
        etcd_sd_options_set_request_timeout_ms;
    etcd_sd_result (*registry_new)(const char *, int64_t, etcd_sd_registry **) =
        etcd_sd_registry_new;
    etcd_sd_result (*registry_new_with)(const etcd_sd_options *, etcd_sd_registry **) =
        etcd_sd_registry_new_with;
    etcd_sd_result (*reg)(etcd_sd_registry *, const char *, const char *) =
        etcd_sd_registry_register;
    etcd_sd_result (*unreg)(etcd_sd_registry *, const char *) = etcd_sd_registry_unregister;
    etcd_sd_result (*lease_id)(const etcd_sd_registry *, int64_t *) =
        etcd_sd_registry_lease_id;
    void (*registry_free)(etcd_sd_registry *) = etcd_sd_registry_free;
    etcd_sd_result (*discovery_new)(const char *, const char *, etcd_sd_event_fn,
                                    etcd_sd_event_fn, void *, etcd_sd_discovery **) =
        etcd_sd_discovery_new;
    etcd_sd_result (*discovery_new_with)(const etcd_sd_options *, const char *,
                                         etcd_sd_event_fn, etcd_sd_event_fn, void *,
                                         etcd_sd_discovery **) = etcd_sd_discovery_new_with;
    void (*discovery_free)(etcd_sd_discovery *) = etcd_sd_discovery_free;
    etcd_sd_result (*set_logger)(etcd_sd_log_fn, void *) = etcd_sd_set_logger;
    etcd_sd_result (*set_level)(uint32_t) = etcd_sd_set_log_level;
    const char *(*last_error)(void) = etcd_sd_last_error;
    const char *(*result_name)(int) = etcd_sd_result_name;
    const char *(*version)(void) = etcd_sd_version;

    static const char *const names[] = {"ETCD_SD_OK", "ETCD_SD_INVALID_ARGUMENT",
                                        "ETCD_SD_UNAVAILABLE", "ETCD_SD_TIMEOUT",
                                        "ETCD_SD_ETCD_ERROR", "ETCD_SD_CLOSED",
                                        "ETCD_SD_INTERNAL"};
    etcd_sd_result codes[] = {ETCD_SD_OK, ETCD_SD_INVALID_ARGUMENT, ETCD_SD_UNAVAILABLE,
                              ETCD_SD_TIMEOUT, ETCD_SD_ETCD_ERROR, ETCD_SD_CLOSED,
                              ETCD_SD_INTERNAL};
    etcd_sd_log_level levels[] = {ETCD_SD_LOG_OFF, ETCD_SD_LOG_ERROR, ETCD_SD_LOG_WARN,
                                  ETCD_SD_LOG_INFO, ETCD_SD_LOG_DEBUG};
    etcd_sd_options *o = NULL;
    etcd_sd_registry *r = NULL;
    etcd_sd_discovery *d = NULL;
    const char *v;
    size_t i;

    (void)ev; (void)lg; (void)options_new; (void)options_free; (void)set_endpoints;
    (void)set_ttl; (void)set_connect; (void)set_request; (void)registry_new;
    (void)registry_new_with; (void)reg; (void)unreg; (void)lease_id; (void)registry_free;
    (void)discovery_new; (void)discovery_new_with; (void)discovery_free; (void)set_logger;
    (void)set_level; (void)last_error; (void)o; (void)r; (void)d;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if ((int)codes[i] != (int)i || strcmp(result_name((int)codes[i]), names[i]) != 0) {
            fprintf(stderr, "result %d: name %s, want %s\n", (int)i,
                    result_name((int)codes[i]), names[i]);
            return 1;
        }
    }
    for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if ((int)levels[i] != (int)i) return 1;
    }
    v = version();
    if (v == NULL || strlen(v) == 0) {
        fprintf(stderr, "empty version\n");
        return 1;
    }
    printf("etcd-sd %s\n", v);
    return 0;
}
