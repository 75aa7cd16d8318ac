// envd-client's side of `context create|update|import`'s TLS file checks
// (client/commands.hpp): a client key that is not its certificate's, or a CA
// file OpenSSL cannot read, fails every connection, so it is refused when the
// context is given it, not at the first build.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "cli/client/commands.hpp"

namespace envd::cli {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { ::BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { ::X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { ::EVP_PKEY_free(key); }
};

// OpenSSL's reason for the last error ("bad base64 decode"), and the queue
// emptied.
std::string openssl_reason() {
  unsigned long code = ::ERR_peek_last_error();
  const char* reason = code != 0 ? ::ERR_reason_error_string(code) : nullptr;
  ::ERR_clear_error();
  return reason != nullptr ? reason : "not PEM";
}

std::unique_ptr<BIO, BioFree> memory_of(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(::BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// OpenSSL's default asks for a passphrase on the terminal; none is ever given.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*data*/) { return 0; }

}  // namespace

Status run_check_tls_ca(const std::string& pem, const std::string& source) {
  auto bio = memory_of(pem);
  if (!bio) return Error(Errc::internal, "out of memory reading TLS material");
  // As a TLS context loads a CA file (Asio's add_certificate_authority):
  // every CERTIFICATE block, until only the end is left.
  int read = 0;
  while (std::unique_ptr<X509, X509Free>(
      ::PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr))) {
    ++read;
  }
  const unsigned long last = ::ERR_peek_last_error();
  if (read > 0 && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ::ERR_clear_error();
    return {};
  }
  if (read == 0) {
    return Error(Errc::invalid_argument,
                 source + " cannot be read as a certificate: " + openssl_reason());
  }
  return Error(Errc::invalid_argument, source + ": its certificate " + std::to_string(read + 1) +
                                           " cannot be read: " + openssl_reason());
}

Status run_check_tls_pair(const TlsPair& pair) {
  auto cert_bio = memory_of(pair.cert_pem);
  auto key_bio = memory_of(pair.key_pem);
  if (!cert_bio || !key_bio) return Error(Errc::internal, "out of memory reading TLS material");
  std::unique_ptr<X509, X509Free> cert(
      ::PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!cert) {
    return Error(Errc::invalid_argument,
                 pair.cert_source + " cannot be read as a certificate: " + openssl_reason());
  }
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      ::PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    return Error(Errc::invalid_argument,
                 pair.key_source + " cannot be read as a private key: " + openssl_reason() +
                     " (it must be an unencrypted PEM key)");
  }
  if (::X509_check_private_key(cert.get(), key.get()) != 1) {
    ::ERR_clear_error();
    return Error(Errc::invalid_argument, pair.key_source + " does not belong to " +
                                             pair.cert_source +
                                             " (their public keys differ): every connection "
                                             "would fail its TLS handshake");
  }
  return {};
}

}  // namespace envd::cli
