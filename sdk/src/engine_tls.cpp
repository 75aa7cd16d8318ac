// TLS to a tcp:// Engine: the OpenSSL context, the handshake with its name
// check, and what a failed handshake or an alert means for the user.
#include "engine_connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

#include "envd/address.hpp"

namespace envd::sdk::engine {

// OpenSSL's reason for a TLS error code of Asio, e.g. "wrong version number".
std::string ssl_reason(const beast::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  return lower_first(ec.message());
}

Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const DockerTls& tls) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  // The docker CLI's minimum too.
  ::SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (tls.verify) {
    context->load_verify_file(tls.ca_file, ec);
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS CA certificate '" +
                                               tls.ca_file + "': " + ssl_reason(ec));
    }
    context->set_verify_mode(asio::ssl::verify_peer);
  } else {
    context->set_verify_mode(asio::ssl::verify_none);
  }
  if (!tls.cert_file.empty()) {
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS client certificate '" +
                                               tls.cert_file + "': " + ssl_reason(ec));
    }
    // No passphrase is ever asked for (OpenSSL's default prompts on the
    // terminal): an encrypted key fails, with the words below.
    context->set_password_callback(
        [](std::size_t, asio::ssl::context::password_purpose) { return std::string(); });
    context->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec && ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
      return Error(Errc::invalid_argument, "the Docker TLS client key '" + tls.key_file +
                                               "' does not belong to the certificate '" +
                                               tls.cert_file + "'");
    }
    if (ec) {
      return Error(Errc::invalid_argument, "cannot use the Docker TLS client key '" + tls.key_file +
                                               "': " + ssl_reason(ec) +
                                               " (it must be an unencrypted PEM key)");
    }
    if (::SSL_CTX_check_private_key(context->native_handle()) != 1) {
      ::ERR_clear_error();
      return Error(Errc::invalid_argument, "the Docker TLS client key '" + tls.key_file +
                                               "' does not belong to the certificate '" +
                                               tls.cert_file + "'");
    }
  }
  return context;
}

// Client side of the TLS handshake; the daemon's name is checked by OpenSSL
// itself (host name or IP address) so that a mismatch has its own verify code.
Status Connection::handshake() {
  tls_.emplace(stream_, *tls_setup_->context);
  SSL* ssl = tls_->native_handle();
  const std::string& host = endpoint_.tcp_host;
  const bool ip = is_ipv4(host) || is_ipv6(host);
  // SNI carries DNS names only (RFC 6066).
  if (!ip) ::SSL_set_tlsext_host_name(ssl, host.c_str());
  if (tls_setup_->settings.verify) {
    X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl);
    // The name must be in a subjectAltName, as the docker CLI (Go) requires:
    // no fallback to the subject's Common Name.
    ::X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    int ok = ip ? ::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                : ::X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) {
      return Error(Errc::internal, "cannot check the Docker Engine's name '" + host + "'");
    }
  }
  auto ec = run([&](auto handler) {
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [handler](error_code e) mutable { handler(e, 0); });
  });
  if (!ec) return {};
  if (cancelled_) return cancelled_error("connecting to the Docker Engine at " + endpoint_.url);
  if (ec == beast::error::timeout) {
    return Error(Errc::timeout, "cannot connect to the Docker Engine at " + endpoint_.url +
                                    " over TLS: the deadline passed during the handshake");
  }
  return tls_error(ec);
}

// Why TLS failed, from OpenSSL's verify result or the alert the daemon sent.
Error Connection::tls_error(error_code ec) {
  const DockerTls& settings = tls_setup_->settings;
  const bool has_cert = !settings.cert_file.empty();
  std::string why;
  long verify = tls_ ? ::SSL_get_verify_result(tls_->native_handle()) : X509_V_OK;
  if (verify != X509_V_OK) {
    switch (verify) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        why = "its certificate is not valid for '" + endpoint_.tcp_host + "'";
        break;
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        why = "its certificate is not signed by the CA in '" + settings.ca_file + "'";
        break;
      default:
        why =
            std::string("its certificate was rejected: ") + ::X509_verify_cert_error_string(verify);
    }
  } else if (ec.category() == asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_HTTP_REQUEST:
        why =
            "it does not speak TLS on this port (for a plain-TCP Engine unset "
            "DOCKER_TLS_VERIFY and DOCKER_TLS)";
        break;
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        why = has_cert ? "it rejected the client certificate '" + settings.cert_file + "' (" +
                             ssl_reason(ec) + ")"
                       : "it requires a client certificate (" + ssl_reason(ec) +
                             "): put cert.pem and key.pem in the DOCKER_CERT_PATH directory";
        break;
      default:
        why = "TLS failed: " + ssl_reason(ec);
    }
  } else {
    why = "it closed the connection during the TLS handshake (" + lower_first(ec.message()) + ")";
  }
  return Error(Errc::unavailable,
               "cannot connect to the Docker Engine at " + endpoint_.url + " over TLS: " + why);
}

}  // namespace envd::sdk::engine
