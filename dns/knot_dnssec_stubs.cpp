// SPDX-License-Identifier: MIT
// The libdnssec functions that the static libknot's packet code refers to,
// so that networkd links libknot.a without libdnssec. Shared libknot pulls
// in libdnssec, GnuTLS (with nettle, gmp, p11-kit, libunistring, ...), LMDB
// and libxdp/libbpf: ~2 MB of resident pages at start-up for code the wire
// format never runs. networkd neither signs nor verifies TSIG, so the TSIG
// calls fail (libknot then treats the algorithm as unknown); the key tag is
// computed as libdnssec does (RFC 4034 appendix B), for DNSKEY text dumps.
// Built only when dns/CMakeLists.txt links libknot.a, never next to the
// shared libdnssec.
extern "C" {
#include <libdnssec/error.h>
#include <libdnssec/keytag.h>
#include <libdnssec/tsig.h>
}

#include <cstddef>
#include <cstdint>

extern "C" {

dnssec_tsig_algorithm_t dnssec_tsig_algorithm_from_dname(const uint8_t*) {
  return DNSSEC_TSIG_UNKNOWN;
}

const uint8_t* dnssec_tsig_algorithm_to_dname(dnssec_tsig_algorithm_t) {
  return nullptr;
}

size_t dnssec_tsig_algorithm_size(dnssec_tsig_algorithm_t) {
  return 0;
}

int dnssec_tsig_new(dnssec_tsig_ctx_t** ctx, dnssec_tsig_algorithm_t,
                    const dnssec_binary_t*) {
  if (ctx != nullptr)
    *ctx = nullptr;
  return DNSSEC_NOT_IMPLEMENTED_ERROR;
}

void dnssec_tsig_free(dnssec_tsig_ctx_t*) {}

int dnssec_tsig_add(dnssec_tsig_ctx_t*, const dnssec_binary_t*) {
  return DNSSEC_NOT_IMPLEMENTED_ERROR;
}

size_t dnssec_tsig_size(dnssec_tsig_ctx_t*) {
  return 0;
}

int dnssec_tsig_write(dnssec_tsig_ctx_t*, uint8_t*) {
  return DNSSEC_NOT_IMPLEMENTED_ERROR;
}

int dnssec_keytag(const dnssec_binary_t* rdata, uint16_t* keytag) {
  if (rdata == nullptr || keytag == nullptr)
    return DNSSEC_EINVAL;
  // flags (2), protocol (1), algorithm (1), public key
  if (rdata->data == nullptr || rdata->size < 4)
    return DNSSEC_MALFORMED_DATA;
  const uint8_t* d = rdata->data;
  size_t n = rdata->size;
  if (d[3] == 1) { // RSA/MD5: bits 8-23 of the modulus' end
    *keytag = n < 9 ? 0 : static_cast<uint16_t>((d[n - 3] << 8) | d[n - 2]);
    return DNSSEC_EOK;
  }
  uint32_t ac = 0;
  for (size_t i = 0; i < n; ++i)
    ac += (i & 1) ? d[i] : static_cast<uint32_t>(d[i]) << 8;
  ac += (ac >> 16) & 0xffff;
  *keytag = static_cast<uint16_t>(ac & 0xffff);
  return DNSSEC_EOK;
}

// knot_strerror() falls back to strerror() when these have no text.
const char* dnssec_strerror(int) {
  return nullptr;
}

const char* mdb_strerror(int) {
  return nullptr;
}

} // extern "C"
