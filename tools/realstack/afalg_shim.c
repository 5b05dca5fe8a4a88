/*
 * afalg_shim.c: stands in for the kernel's AF_ALG crypto sockets, for btvirt on kernels
 * built without AF_ALG (BlueZ's bt_crypto_new() then fails and btvirt drops every LE
 * client). Load it with LD_PRELOAD=afalg_shim.so btvirt ...
 *
 * BlueZ (src/shared/crypto.c) uses exactly two algorithms and one call pattern:
 *   fd = socket(AF_ALG, SOCK_SEQPACKET, 0); bind(fd, {"skcipher","ecb(aes)"} or
 *   {"hash","cmac(aes)"}); setsockopt(fd, SOL_ALG, ALG_SET_KEY, key, 16);
 *   op = accept(fd) (or accept4); sendmsg(op)/send(op)/write(op) the input;
 *   read(op)/recv(op) the 16-byte result; close(op); close(fd).
 * Only that is emulated; every other socket call goes to libc. AES-128 is OpenSSL's
 * libcrypto (EVP, ECB without padding); AES-CMAC is built here on top of it (RFC 4493).
 * The prototypes are declared here so that only the runtime libcrypto is needed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#define SOL_ALG_ 279
#define ALG_SET_KEY_ 1

/* libcrypto (OpenSSL >= 1.1): the few EVP calls used */
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
extern EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
extern void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *);
extern const EVP_CIPHER *EVP_aes_128_ecb(void);
extern int EVP_EncryptInit_ex(EVP_CIPHER_CTX *, const EVP_CIPHER *, void *, const unsigned char *, const unsigned char *);
extern int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX *, int);
extern int EVP_EncryptUpdate(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);

enum { NONE, ECB, CMAC };
#define SLOTS 1024   /* fds tracked; BlueZ holds two base sockets and one op at a time */
#define BUF 1024     /* the longest message BlueZ signs is far shorter */

struct alg {
    uint8_t kind, op, keyed;
    uint8_t key[16];
    size_t inlen, outlen;
    uint8_t in[BUF], out[BUF];
};
static struct alg slot[SLOTS];

#define REAL(ret, name, args) static ret (*real_##name) args
REAL(int, socket, (int, int, int));
REAL(int, bind, (int, const struct sockaddr *, socklen_t));
REAL(int, setsockopt, (int, int, int, const void *, socklen_t));
REAL(int, accept4, (int, struct sockaddr *, socklen_t *, int));
REAL(ssize_t, sendmsg, (int, const struct msghdr *, int));
REAL(ssize_t, send, (int, const void *, size_t, int));
REAL(ssize_t, write, (int, const void *, size_t));
REAL(ssize_t, read, (int, void *, size_t));
REAL(ssize_t, recv, (int, void *, size_t, int));
REAL(int, close, (int));
#define LINK(name) if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

static struct alg *ours(int fd) {
    return (fd >= 0 && fd < SLOTS && slot[fd].kind != NONE) ? &slot[fd] : NULL;
}

/* A real, unconnected socket descriptor stands in, so poll, close and callers that
 * check the descriptor's kind behave as with the kernel's. */
static int claim(uint8_t kind, uint8_t op) {
    LINK(socket);
    int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (fd >= SLOTS) { LINK(close); real_close(fd); errno = EMFILE; return -1; }
    memset(&slot[fd], 0, sizeof slot[fd]);
    slot[fd].kind = kind;
    slot[fd].op = op;
    return fd;
}

static int aes128(const uint8_t key[16], const uint8_t *in, uint8_t *out, size_t len) {
    int n = 0, ok;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return 0;
    ok = EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL) == 1 &&
         EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
         EVP_EncryptUpdate(c, out, &n, in, (int)len) == 1 && n == (int)len;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* K1/K2 of RFC 4493 2.3: L = AES(K, 0); shift left one bit, xor 0x87 on carry out. */
static void dbl(const uint8_t *in, uint8_t *out) {
    int i;
    for (i = 0; i < 16; i++) out[i] = (uint8_t)(in[i] << 1) | (i < 15 ? in[i + 1] >> 7 : 0);
    if (in[0] & 0x80) out[15] ^= 0x87;
}

static int cmac(const uint8_t key[16], const uint8_t *m, size_t len, uint8_t mac[16]) {
    uint8_t zero[16] = {0}, l[16], k1[16], k2[16], last[16], x[16] = {0};
    size_t blocks = len ? (len + 15) / 16 : 1, i, j;
    int whole = len && len % 16 == 0;
    if (!aes128(key, zero, l, 16)) return 0;
    dbl(l, k1);
    dbl(k1, k2);
    for (j = 0; j < 16; j++) {  /* the last block: xor K1 when whole, else pad 10* and xor K2 */
        size_t at = (blocks - 1) * 16 + j;
        uint8_t b = at < len ? m[at] : (at == len ? 0x80 : 0);
        last[j] = b ^ (whole ? k1[j] : k2[j]);
    }
    for (i = 0; i + 1 < blocks; i++) {
        for (j = 0; j < 16; j++) x[j] ^= m[i * 16 + j];
        if (!aes128(key, x, x, 16)) return 0;
    }
    for (j = 0; j < 16; j++) x[j] ^= last[j];
    return aes128(key, x, mac, 16);
}

static ssize_t take(struct alg *a, const void *buf, size_t len) {
    if (a->op == 0 || a->inlen + len > BUF) { errno = a->op ? EMSGSIZE : EINVAL; return -1; }
    memcpy(a->in + a->inlen, buf, len);
    a->inlen += len;
    return (ssize_t)len;
}

static int finish(struct alg *a) {  /* the result of everything fed since the last read */
    int ok;
    if (a->kind == ECB) {
        if (a->inlen % 16) { errno = EINVAL; return -1; }
        ok = aes128(a->key, a->in, a->out, a->inlen);
        a->outlen = a->inlen;
    } else {
        ok = cmac(a->key, a->in, a->inlen, a->out);
        a->outlen = 16;
    }
    a->inlen = 0;
    if (!ok) { errno = EIO; return -1; }
    return 0;
}

static ssize_t give(struct alg *a, void *buf, size_t len) {
    if (!a->outlen && finish(a) < 0) return -1;
    if (len > a->outlen) len = a->outlen;
    memcpy(buf, a->out, len);
    a->outlen = 0;
    return (ssize_t)len;
}

int socket(int domain, int type, int protocol) {
    LINK(socket);
    if (domain == AF_ALG) return claim(ECB, 0);  /* the kind is set at bind() */
    return real_socket(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *sa, socklen_t len) {
    struct alg *a = ours(fd);
    LINK(bind);
    if (!a) return real_bind(fd, sa, len);
    /* struct sockaddr_alg: u16 family, u8 type[14], u32 feat, u32 mask, u8 name[64] */
    if (len < 88) { errno = EINVAL; return -1; }
    const char *name = (const char *)sa + 24;
    if (!strncmp(name, "ecb(aes)", 64)) a->kind = ECB;
    else if (!strncmp(name, "cmac(aes)", 64)) a->kind = CMAC;
    else { errno = ENOENT; return -1; }
    return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    struct alg *a = ours(fd);
    LINK(setsockopt);
    if (!a) return real_setsockopt(fd, level, name, val, len);
    if (level != SOL_ALG_ || name != ALG_SET_KEY_ || len != 16) { errno = ENOPROTOOPT; return -1; }
    memcpy(a->key, val, 16);
    a->keyed = 1;
    return 0;
}

int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags) {
    struct alg *a = ours(fd);
    LINK(accept4);
    if (!a) return real_accept4(fd, sa, len, flags);
    if (!a->keyed) { errno = ENOKEY; return -1; }
    int op = claim(a->kind, 1);
    if (op >= 0) { memcpy(slot[op].key, a->key, 16); slot[op].keyed = 1; }
    return op;
}

int accept(int fd, struct sockaddr *sa, socklen_t *len) { return accept4(fd, sa, len, 0); }

ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
    struct alg *a = ours(fd);
    size_t i;
    ssize_t n = 0;
    LINK(sendmsg);
    if (!a) return real_sendmsg(fd, m, flags);
    /* the control message (ALG_SET_OP encrypt) is implied: BlueZ only encrypts */
    for (i = 0; i < m->msg_iovlen; i++) {
        if (take(a, m->msg_iov[i].iov_base, m->msg_iov[i].iov_len) < 0) return -1;
        n += (ssize_t)m->msg_iov[i].iov_len;
    }
    return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    struct alg *a = ours(fd);
    LINK(send);
    return a ? take(a, buf, len) : real_send(fd, buf, len, flags);
}

ssize_t write(int fd, const void *buf, size_t len) {
    struct alg *a = ours(fd);
    LINK(write);
    return a ? take(a, buf, len) : real_write(fd, buf, len);
}

ssize_t read(int fd, void *buf, size_t len) {
    struct alg *a = ours(fd);
    LINK(read);
    return a ? give(a, buf, len) : real_read(fd, buf, len);
}

ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen) {
    (void)buflen;
    return read(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    struct alg *a = ours(fd);
    LINK(recv);
    return a ? give(a, buf, len) : real_recv(fd, buf, len, flags);
}

int close(int fd) {
    struct alg *a = ours(fd);
    LINK(close);
    if (a) a->kind = NONE;
    return real_close(fd);
}
