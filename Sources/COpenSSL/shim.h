#ifndef SG_COPENSSL_SHIM_H
#define SG_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The OpenSSL calls below are macros over SSL_ctrl / SSL_CTX_ctrl, which Swift cannot import. */

/* Non-blocking writes: a retry after WANT_WRITE may pass a buffer that has moved (a Swift array
   that grew), and a write that sent one record returns instead of waiting to send them all. */
static inline void sg_ssl_ctx_set_nonblocking_modes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

static inline int sg_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline int sg_ssl_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
#endif
