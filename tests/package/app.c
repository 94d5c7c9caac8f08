/* A C program using an *installed* etcd-sd, built by scripts/package-test.sh with plain
 * `gcc app.c -letcd_sd` (the header from the include directory, nothing else). It registers
 * KEY -> VALUE and checks that a Discovery of KEY's directory lists it.
 *
 *   usage: app_c ENDPOINTS KEY VALUE        prints "ok: ..." and exits 0 on success
 */
#include <etcd_sd.h>

#include <stdio.h>
#include <string.h>

struct expect {
    const char *key;
    const char *value;
    int seen;
};

static void on_put(void *user_data, const char *key, size_t key_len, const char *value,
                   size_t value_len) {
    struct expect *e = (struct expect *)user_data;
    if (key_len == strlen(e->key) && memcmp(key, e->key, key_len) == 0 &&
        value_len == strlen(e->value) && memcmp(value, e->value, value_len) == 0)
        e->seen = 1;
}

int main(int argc, char **argv) {
    etcd_sd_registry *reg = NULL;
    etcd_sd_discovery *disc = NULL;
    struct expect e;
    char prefix[256];
    const char *slash;
    enum etcd_sd_result rc;

    if (argc != 4) {
        fprintf(stderr, "usage: %s ENDPOINTS KEY VALUE\n", argv[0]);
        return 2;
    }
    e.key = argv[2];
    e.value = argv[3];
    e.seen = 0;
    slash = strrchr(e.key, '/');
    if (slash == NULL || (size_t)(slash - e.key) + 2 > sizeof prefix) {
        fprintf(stderr, "KEY must contain a '/' and be short\n");
        return 2;
    }
    memcpy(prefix, e.key, (size_t)(slash - e.key) + 1);
    prefix[slash - e.key + 1] = '\0';

    rc = etcd_sd_registry_new(argv[1], 5, &reg);
    if (rc == ETCD_SD_OK) rc = etcd_sd_registry_register(reg, e.key, e.value);
    /* The initial listing runs on_put on this thread before _new returns. */
    if (rc == ETCD_SD_OK) rc = etcd_sd_discovery_new(argv[1], prefix, on_put, NULL, &e, &disc);
    if (rc != ETCD_SD_OK) {
        fprintf(stderr, "%s: %s\n", etcd_sd_result_name(rc), etcd_sd_last_error());
        etcd_sd_registry_free(reg);
        return 1;
    }
    etcd_sd_discovery_free(disc);
    etcd_sd_registry_free(reg);
    if (!e.seen) {
        fprintf(stderr, "the discovery did not list %s -> %s\n", e.key, e.value);
        return 1;
    }
    printf("ok: %s -> %s listed by a Discovery (C API)\n", e.key, e.value);
    return 0;
}
