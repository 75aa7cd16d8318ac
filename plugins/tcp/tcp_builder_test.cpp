#include "tcp_builder.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "testing/address_expectations.hpp"

namespace envd::plugins {
namespace {

constexpr auto normalized = test_support::normalized<TcpBuilder>;
constexpr auto rejected = test_support::rejected<TcpBuilder>;

constexpr const char* kExpected =
    "; expected host:port (IPv4, [IPv6] or DNS name), e.g. 10.0.0.5:8888";

TEST(TcpBuilder, AcceptsHostPortInEveryHostForm) {
  EXPECT_EQ(normalized("10.0.0.5:8888"), "10.0.0.5:8888");
  EXPECT_EQ(normalized("[::1]:1234"), "[::1]:1234");
  EXPECT_EQ(normalized("[2001:DB8::1]:1234"), "[2001:db8::1]:1234");
  EXPECT_EQ(normalized("buildkitd.ci.svc:1234"), "buildkitd.ci.svc:1234");
  EXPECT_EQ(normalized("localhost:30003"), "localhost:30003");
}

TEST(TcpBuilder, StripsTheTcpSchemeAndNormalisesCase) {
  EXPECT_EQ(normalized("tcp://10.0.0.5:8888"), "10.0.0.5:8888");
  EXPECT_EQ(normalized("TCP://Build.Example.COM:8888"), "build.example.com:8888");
  EXPECT_EQ(normalized("tcp://[::1]:8888"), "[::1]:8888");
}

TEST(TcpBuilder, EmptyAddressSaysAnAddressIsRequired) {
  EXPECT_EQ(rejected(""),
            "no default address: pass --builder-address host:port, e.g. --builder-address "
            "10.0.0.5:8888");
}

TEST(TcpBuilder, RejectsOtherFormsNamingTheExpectedOne) {
  EXPECT_EQ(rejected("x"),
            std::string("tcp builder address 'x' is invalid: the port is missing") + kExpected);
  EXPECT_EQ(rejected("envd_buildkitd"),
            std::string("tcp builder address 'envd_buildkitd' is invalid: host 'envd_buildkitd' "
                        "is not an IPv4 address, a bracketed IPv6 address or a DNS name") +
                kExpected);
  EXPECT_EQ(rejected("10.0.0.5:99999"),
            std::string("tcp builder address '10.0.0.5:99999' is invalid: port '99999' is not a "
                        "number from 1 to 65535") +
                kExpected);
  EXPECT_EQ(rejected("http://10.0.0.5:8888"),
            std::string("tcp builder address 'http://10.0.0.5:8888' is invalid: scheme 'http://' "
                        "is not accepted (only tcp:// or none)") +
                kExpected);
  EXPECT_EQ(
      rejected("tcp://"),
      std::string("tcp builder address 'tcp://' is invalid: the address is empty") + kExpected);
  EXPECT_EQ(rejected("::1:8888"),
            std::string("tcp builder address '::1:8888' is invalid: IPv6 host must be in "
                        "brackets, e.g. [::1]:8888") +
                kExpected);
  EXPECT_EQ(rejected("bad_host:80"),
            std::string("tcp builder address 'bad_host:80' is invalid: host 'bad_host' is not an "
                        "IPv4 address, a bracketed IPv6 address or a DNS name") +
                kExpected);
  EXPECT_EQ(rejected("tcp://h:1/path"),
            std::string("tcp builder address 'tcp://h:1/path' is invalid: port '1/path' is not a "
                        "number from 1 to 65535") +
                kExpected);
  EXPECT_EQ(rejected(" h:1"),
            std::string("tcp builder address ' h:1' is invalid: host ' h' is not an IPv4 "
                        "address, a bracketed IPv6 address or a DNS name") +
                kExpected);
}

// ---- options -----------------------------------------------------------------

std::string options_error(const sdk::Options& options) {
  auto result = TcpBuilder().normalize_options(options);
  if (result) return "<accepted>";
  EXPECT_EQ(result.error().code(), Errc::invalid_argument);
  return result.error().message();
}

TEST(TcpBuilderOptions, AcceptsNoneServerOnlyAndMutualTls) {
  TcpBuilder driver;
  EXPECT_TRUE(driver.normalize_options({}));
  sdk::Options server_only{{"tls-ca", "/tmp/ca.pem"}};
  EXPECT_EQ(driver.normalize_options(server_only).value(), server_only);
  sdk::Options mutual{{"tls-ca", "files/tls-ca"},
                      {"tls-cert", "files/tls-cert"},
                      {"tls-key", "files/tls-key"},
                      {"tls-servername", "buildkitd.example.com"}};
  EXPECT_EQ(driver.normalize_options(mutual).value(), mutual);
  // A client pair without a CA verifies the daemon against the system roots.
  EXPECT_TRUE(driver.normalize_options({{"tls-cert", "c.pem"}, {"tls-key", "k.pem"}}));
  EXPECT_TRUE(driver.normalize_options({{"tls-ca", "ca.pem"}, {"tls-servername", "10.0.0.5"}}));
}

TEST(TcpBuilderOptions, RejectsUnknownKeysNamingTheAllowedOnes) {
  EXPECT_EQ(options_error({{"image", "x"}}),
            "unknown option 'image' (allowed: tls-ca, tls-cert, tls-key, "
            "tls-servername)");
}

TEST(TcpBuilderOptions, CertAndKeyComeTogether) {
  EXPECT_EQ(options_error({{"tls-cert", "c.pem"}}),
            "a client certificate comes with its private key: tls-cert is set without tls-key "
            "(add --builder-tls-key)");
  EXPECT_EQ(options_error({{"tls-ca", "ca.pem"}, {"tls-key", "k.pem"}}),
            "a client certificate comes with its private key: tls-key is set without tls-cert "
            "(add --builder-tls-cert)");
}

TEST(TcpBuilderOptions, ServerNameNeedsTlsAndMustBeAName) {
  EXPECT_EQ(options_error({{"tls-servername", "wrong.example"}}),
            "tls-servername 'wrong.example' needs TLS: set --builder-tls-ca (and, for mutual "
            "TLS, --builder-tls-cert and --builder-tls-key)");
  EXPECT_EQ(options_error({{"tls-ca", "ca.pem"}, {"tls-servername", "not a name"}}),
            "tls-servername 'not a name' is not a DNS name or an IP address, e.g. "
            "buildkitd.example.com");
  EXPECT_EQ(options_error({{"tls-ca", ""}}), "option 'tls-ca' is empty");
}

// ---- dial ----------------------------------------------------------------------

constexpr const char* kCertPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr const char* kKeyPem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

class TcpBuilderDial : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "envd-tcp-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& content) {
    auto path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  sdk::Request request(const std::string& address, sdk::Options options = {}) {
    sdk::Request r;
    r.context = "ci";
    r.address = address;
    r.options = std::move(options);
    return r;
  }

  std::filesystem::path dir_;
};

TEST_F(TcpBuilderDial, PlaintextTargetsUseTheResolverOfTheHostKind) {
  TcpBuilder driver;
  auto v4 = driver.dial(request("10.0.0.5:8888"));
  ASSERT_TRUE(v4) << v4.error().message();
  EXPECT_EQ(v4->kind, sdk::Transport::Kind::grpc_target);
  EXPECT_EQ(v4->target, "ipv4:10.0.0.5:8888");
  EXPECT_EQ(v4->description, "tcp://10.0.0.5:8888");
  EXPECT_TRUE(v4->tls_ca_pem.empty());
  EXPECT_TRUE(v4->tls_server_name.empty());
  EXPECT_TRUE(v4->self_contained);  // the core dials it; nothing of the driver runs after
  auto v6 = driver.dial(request("[::1]:1234"));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->target, "ipv6:[::1]:1234");
  EXPECT_EQ(v6->description, "tcp://[::1]:1234");
  auto dns = driver.dial(request("buildkitd.ci.svc:1234"));
  ASSERT_TRUE(dns);
  EXPECT_EQ(dns->target, "dns:///buildkitd.ci.svc:1234");
  EXPECT_EQ(dns->description, "tcp://buildkitd.ci.svc:1234");
}

TEST_F(TcpBuilderDial, ServerOnlyTlsReadsTheCaAndDefaultsTheNameToTheHost) {
  auto t = TcpBuilder().dial(request("build.example.com:8888", {{"tls-ca", file("ca", kCertPem)}}));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->tls_ca_pem, kCertPem);
  EXPECT_TRUE(t->tls_cert_pem.empty());
  EXPECT_TRUE(t->tls_key_pem.empty());
  EXPECT_EQ(t->tls_server_name, "build.example.com");
}

TEST_F(TcpBuilderDial, MutualTlsReadsThePairAndHonoursTheServerName) {
  std::string rsa_key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
  auto t = TcpBuilder().dial(request("127.0.0.1:8888", {{"tls-ca", file("ca", kCertPem)},
                                                        {"tls-cert", file("cert", kCertPem)},
                                                        {"tls-key", file("key", rsa_key)},
                                                        {"tls-servername", "buildkitd"}}));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->tls_cert_pem, kCertPem);
  EXPECT_EQ(t->tls_key_pem, rsa_key);
  EXPECT_EQ(t->tls_server_name, "buildkitd");
}

TEST_F(TcpBuilderDial, AMissingStoredFileNamesTheOptionTheContextAndTheFix) {
  std::string path = (dir_ / "gone").string();
  auto t = TcpBuilder().dial(request("127.0.0.1:8888", {{"tls-ca", path}}));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::not_found);
  EXPECT_EQ(t.error().message(),
            "tls-ca of context 'ci' ('" + path +
                "') cannot be read: No such file or directory; set it again with `envd context "
                "update ci --builder-tls-ca FILE`");
}

TEST_F(TcpBuilderDial, AFileWithoutTheRightPemBlockIsRefused) {
  std::string key_as_cert = file("cert", kKeyPem);
  auto t = TcpBuilder().dial(
      request("127.0.0.1:8888", {{"tls-cert", key_as_cert}, {"tls-key", file("key", kKeyPem)}}));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::invalid_argument);
  EXPECT_EQ(t.error().message(), "tls-cert of context 'ci' ('" + key_as_cert +
                                     "') is not a PEM file with a CERTIFICATE block; set it again "
                                     "with `envd context update ci --builder-tls-cert FILE`");
  std::string binary = file("ca", std::string("\x30\x82\x01\x0a", 4));
  auto t2 = TcpBuilder().dial(request("127.0.0.1:8888", {{"tls-ca", binary}}));
  ASSERT_FALSE(t2);
  EXPECT_NE(t2.error().message().find("is not a PEM file with a CERTIFICATE block"),
            std::string::npos);
}

TEST_F(TcpBuilderDial, StatusSaysTheCoreProbesAndNamesTheSecurity) {
  auto s = TcpBuilder().status(
      request("10.0.0.5:8888", {{"tls-ca", "x"}, {"tls-cert", "y"}, {"tls-key", "z"}}));
  ASSERT_TRUE(s);
  auto v = boost::json::parse(*s).as_object();
  EXPECT_EQ(v.at("state").as_string(), "unknown");
  EXPECT_EQ(v.at("detail").as_string(), "mutual TLS; envd does not manage this daemon");
  auto plain = TcpBuilder().status(request("10.0.0.5:8888"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(boost::json::parse(*plain).at("detail").as_string(),
            "plaintext; envd does not manage this daemon");
}

TEST_F(TcpBuilderDial, LifecycleVerbsSayTheDaemonIsNotManaged) {
  TcpBuilder driver;
  auto b = driver.bootstrap(request("10.0.0.5:8888"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::unsupported);
  EXPECT_EQ(b.error().message(),
            "nothing to bootstrap: it connects to a buildkitd that someone else runs (start the "
            "daemon yourself, e.g. `buildkitd --addr tcp://0.0.0.0:8888`)");
  EXPECT_EQ(driver.stop(request("h:1")).error().code(), Errc::unsupported);
  EXPECT_EQ(driver.remove(request("h:1")).error().code(), Errc::unsupported);
}

}  // namespace
}  // namespace envd::plugins
