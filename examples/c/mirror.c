/* A 2-mirror RAID1 over two image files: create, write, read back, stop.
 * cc mirror.c $(pkg-config --cflags --libs mdraid) -o mirror && ./mirror a.img b.img */
#include <mdraid.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TRY(call) do { mdraid_result r_ = (call); if (r_ != MDRAID_OK) { \
    fprintf(stderr, "%s: %s\n", #call, mdraid_last_error()); return 1; } } while (0)

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s a.img b.img\n", argv[0]); return 2; }
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        int fd = open(argv[i + 1], O_RDWR | O_CREAT, 0644);
        if (fd < 0 || ftruncate(fd, 64 << 20) != 0) { perror(argv[i + 1]); return 1; }
        close(fd);
        TRY(mdraid_member_open_path(argv[i + 1], 0, &m[i]));
    }
    mdraid_create_options o;
    TRY(mdraid_create_options_init(&o));
    o.bitmap = MDRAID_BITMAP_INTERNAL;
    o.name = "example";
    mdraid_array *a;
    TRY(mdraid_array_create(&o, m, 2, &a));
    char buf[4096], back[4096];
    memset(buf, 'x', sizeof buf);
    TRY(mdraid_array_write(a, 1 << 20, (const uint8_t *)buf, sizeof buf, 0));
    TRY(mdraid_array_flush(a));
    TRY(mdraid_array_read(a, 1 << 20, (uint8_t *)back, sizeof back));
    mdraid_array_info info;
    TRY(mdraid_array_get_info(a, &info));
    printf("libmdraid %s: %llu-byte array, %u mirrors in sync, data %s\n", mdraid_version(),
           (unsigned long long)info.size, info.in_sync, memcmp(buf, back, 4096) ? "BAD" : "ok");
    TRY(mdraid_array_stop(a));
    mdraid_array_free(a);
    mdraid_member_free(m[0]);
    mdraid_member_free(m[1]);
    return 0;
}
