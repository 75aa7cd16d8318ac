// `context create/update` with driver options: --builder-opt, the TLS flags and
// --buildkitd-config, and the files of file options copied into the store.
// The driver is the test module good_builder.c: it echoes every option back
// from normalize_options and declares "tls-ca" and "config" as file options.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "cli_harness.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* kPem = kTestCaPem;

class BuilderOptionsCli : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // The contexts use the test module's builder and the default runner.
    ENVD_REQUIRE_MODULES("docker runner");
    fs::path dir = home() / "plugins";
    fs::create_directories(dir);
    fs::copy_file(ENVD_TEST_LOGGING_MODULE, dir / "test-builder.so");
    env_ = {{"ENVD_PLUGIN_PATH", dir.string()}};
  }

  sdk::ProcessResult run(const std::vector<std::string>& args) { return envd(args, env_); }
  sdk::ProcessResult run_ok(const std::vector<std::string>& args) { return envd_ok(args, env_); }

  // The stored record of context `name`.
  json::object record(const std::string& name) {
    json::object store = read_store();  // the loop must not outlive it
    for (const auto& ctx : store.at("contexts").as_array()) {
      if (ctx.at("name") == name.c_str()) return ctx.as_object();
    }
    ADD_FAILURE() << "no context " << name;
    return {};
  }
  json::object options(const std::string& name) {
    json::object ctx = record(name);
    const json::value* opts = ctx.if_contains("builder_options");
    return opts != nullptr ? opts->as_object() : json::object{};
  }
  fs::path private_dir(const std::string& name) {
    return config_dir() / "contexts.d" / std::string(record(name).at("id").as_string());
  }
  fs::path write(const std::string& file, const std::string& text) {
    write_text(home() / file, text);
    return home() / file;
  }

  std::map<std::string, std::optional<std::string>> env_;
};

// A module's thread may call the host after main() returns (plugin_abi.h
// promises the table for the life of the process): envd ends cleanly, and
// under AddressSanitizer (scripts/sanitize.sh) touches no freed memory.
TEST_F(BuilderOptionsCli, AModulesThreadMayCallTheHostUntilTheProcessEnds) {
  for (int i = 0; i < 5; ++i) {
    auto r = run({"context", "create", "c" + std::to_string(i), "--builder", "test-builder",
                  "--builder-address", "chatter"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "Context c" + std::to_string(i) + " is created\n");
  }
}

// A module that crashes or calls exit() ends envd: which driver did it, and
// in which verb, is said in one line instead of nothing.
TEST_F(BuilderOptionsCli, AModuleThatEndsTheProcessIsNamed) {
  // Under AddressSanitizer (scripts/sanitize.sh) its own handler takes the
  // crash, reports it as a finding and aborts: only the exit is checked there.
#if !defined(__SANITIZE_ADDRESS__)
  // Run directly: the harness takes any death by a signal for a defect.
  sdk::ProcessOptions options;
  options.argv = {envd_binary(),  "context",           "create", "c", "--builder",
                  "test-builder", "--builder-address", "crash"};
  options.env = base_env();
  for (const auto& [key, value] : env_) options.env[key] = value;
  options.timeout = std::chrono::seconds(60);
  auto crashed = sdk::run_process(options);
  ASSERT_TRUE(crashed) << crashed.error().message();
  EXPECT_EQ(crashed->term_signal, SIGSEGV) << crashed->err;
  EXPECT_EQ(crashed->err,
            "envd: error: builder 'test-builder' crashed in normalize_address (signal 11: "
            "Segmentation fault); envd cannot go on\n");
#endif
  auto exited =
      run({"context", "create", "e", "--builder", "test-builder", "--builder-address", "exit"});
  EXPECT_EQ(exited.exit_code, 1);  // the module's exit(3) is not envd's status
  EXPECT_EQ(exited.err,
            "envd: error: builder 'test-builder' called exit() in normalize_address, which ends "
            "envd\n");
  // exit(0) from a verb is no success: a script must not take it for one.
  auto exited0 =
      run({"context", "create", "e", "--builder", "test-builder", "--builder-address", "exit0"});
  EXPECT_EQ(exited0.exit_code, 1);
  EXPECT_EQ(exited0.err, exited.err);
  json::object store = read_store();  // the loop must not outlive it
  for (const auto& ctx : store.at("contexts").as_array()) {
    EXPECT_EQ(ctx.at("name"), "default");  // nothing was stored
  }
}

TEST_F(BuilderOptionsCli, TlsFilesAreCopiedIntoTheStoreAndOutliveTheOriginal) {
  fs::path ca = write("ca.pem", kPem);
  run_ok({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
          "--builder-tls-ca", ca.string(), "--builder-tls-servername", "build.example"});
  EXPECT_EQ(options("r").at("tls-ca"), "files/tls-ca");
  EXPECT_EQ(options("r").at("tls-servername"), "build.example");
  fs::path stored = private_dir("r") / "files" / "tls-ca";
  EXPECT_EQ(read_text(stored), kPem);
  EXPECT_EQ(mode_of(stored), 0600u);
  fs::remove(ca);
  EXPECT_EQ(read_text(stored), kPem);

  // inspect names the material, never its contents.
  auto inspect = run_ok({"context", "inspect", "r"});
  EXPECT_NE(inspect.out.find("files/tls-ca"), std::string::npos) << inspect.out;
  EXPECT_EQ(inspect.out.find("MIIB"), std::string::npos) << inspect.out;
}

TEST_F(BuilderOptionsCli, BadFilesAreRefusedAndNothingIsStored) {
  auto missing = run({"context", "create", "r", "--builder", "test-builder", "--builder-address",
                      "h:1", "--builder-tls-ca", (home() / "nope.pem").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "envd: error: cannot read --builder-tls-ca '" +
                             (home() / "nope.pem").string() + "': No such file or directory\n");

  fs::path not_pem = write("ca.der", std::string("\x30\x82\x01\x0a", 4));
  auto binary = run({"context", "create", "r", "--builder", "test-builder", "--builder-address",
                     "h:1", "--builder-tls-ca", not_pem.string()});
  EXPECT_EQ(binary.exit_code, 1);
  EXPECT_EQ(binary.err, "envd: error: --builder-tls-ca '" + not_pem.string() +
                            "' is not a PEM file (no -----BEGIN line)\n");

  // A private key given as the CA: PEM, but not the block the flag needs.
  fs::path key =
      write("key.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n");
  auto swapped = run({"context", "create", "r", "--builder", "test-builder", "--builder-address",
                      "h:1", "--builder-tls-ca", key.string()});
  EXPECT_EQ(swapped.exit_code, 1);
  EXPECT_EQ(swapped.err, "envd: error: --builder-tls-ca '" + key.string() +
                             "' holds no CERTIFICATE block (it holds RSA PRIVATE KEY)\n");

  // CERTIFICATE blocks OpenSSL cannot read: mangled, or a CA file cut off
  // in its second certificate (a truncated copy). A TLS connection loads
  // them all, so each is read now, as it will be read then.
  fs::path mangled =
      write("mangled.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
  auto garbled = run({"context", "create", "r", "--builder", "test-builder", "--builder-address",
                      "h:1", "--builder-tls-ca", mangled.string()});
  EXPECT_EQ(garbled.exit_code, 1);
  EXPECT_EQ(garbled.err, "envd: error: --builder-tls-ca '" + mangled.string() +
                             "' cannot be read as a certificate: bad base64 decode\n");
  const std::string ca_pem = kPem;
  fs::path truncated = write("bundle.pem", ca_pem + ca_pem.substr(0, 200) + "\n");
  auto cut = run({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
                  "--builder-tls-ca", truncated.string()});
  EXPECT_EQ(cut.exit_code, 1);
  EXPECT_EQ(cut.err.rfind("envd: error: --builder-tls-ca '" + truncated.string() +
                              "': its certificate 2 cannot be read: ",
                          0),
            0U)
      << cut.err;
  // A bundle of two is taken.
  fs::path bundle = write("two.pem", ca_pem + ca_pem);
  run_ok({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
          "--builder-tls-ca", bundle.string()});
  run_ok({"context", "rm", "r"});
  // A CA file with the CA's key in it: the key would be stored, and leave
  // with an exported context without a word.
  fs::path with_key = write(
      "ca-and-key.pem", ca_pem + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
  auto keyed = run({"context", "create", "r", "--builder", "test-builder", "--builder-address",
                    "h:1", "--builder-tls-ca", with_key.string()});
  EXPECT_EQ(keyed.exit_code, 1);
  EXPECT_EQ(keyed.err, "envd: error: --builder-tls-ca '" + with_key.string() +
                           "' holds a private key (PRIVATE KEY) beside the CA's certificate: "
                           "envd would store it and export it with the context; give the "
                           "certificate alone (openssl x509 -in FILE -out CA.pem)\n");

  auto dir = run({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
                  "--buildkitd-config", home().string()});
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_EQ(dir.err, "envd: error: cannot read --buildkitd-config '" + home().string() +
                         "': not a regular file\n");

  // The test builder declares no tls-cert file option: no TLS client pair.
  fs::path cert = write("cert.pem", kPem);
  auto unsupported = run({"context", "create", "r", "--builder", "test-builder",
                          "--builder-address", "h:1", "--builder-tls-cert", cert.string()});
  EXPECT_EQ(unsupported.exit_code, 1);
  EXPECT_EQ(unsupported.err,
            "envd: error: the 'test-builder' builder takes no TLS material (--builder-tls-cert)\n");

  EXPECT_EQ(ls_json().size(), 1u) << "only the default context";
  EXPECT_FALSE(fs::exists(config_dir() / "contexts.d") &&
               !fs::is_empty(config_dir() / "contexts.d"));
}

// A driver verb that never returns and ignores cancellation (the test
// module's stop at address "hang") must not leave envd deaf: a second signal
// ends it at once, and a single one after the grace period, each with one
// line and the first signal's status. One stop that one process sends twice
// at once (timeout(1) signals envd, then its process group) is one signal:
// it leaves the clean-up its grace period.
TEST_F(BuilderOptionsCli, ADriverThatIgnoresCancellationCannotKeepEnvdRunning) {
  run_ok({"context", "create", "stuck", "--builder", "test-builder", "--builder-address", "hang",
          "--use"});
  struct Case {
    std::vector<int> signals;
    bool second_from_another_process;
    int status;
    std::string message;
    std::chrono::seconds at_most;
  };
  const std::vector<Case> cases = {
      {{SIGINT, SIGINT},
       true,
       130,
       "interrupted again; ending envd without its clean-up",
       std::chrono::seconds(5)},
      {{SIGTERM, SIGTERM},
       false,
       143,
       "interrupted, but the command did not stop within 10 s (still waiting on builder "
       "'test-builder' in stop); ending envd without its clean-up",
       std::chrono::seconds(20)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.status);
    sdk::ProcessOptions options;
    options.argv = {envd_binary(), "builder", "stop"};
    options.env = base_env();
    for (const auto& [key, value] : env_) options.env[key] = value;
    BackgroundEnvd envd(options);
    ASSERT_EQ(envd.start_error(), "");
    // The verb runs once the signal watcher's thread is up beside the main
    // one (envd-client, in envd's place): signals before that would take
    // their default effect.
    const fs::path tasks = "/proc/" + std::to_string(envd.pid()) + "/task";
    for (int i = 0; i < 500; ++i) {
      std::error_code ec;
      auto count = std::distance(fs::directory_iterator(tasks, ec), fs::directory_iterator());
      if (!ec && count >= 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(envd.pid(), c.signals[0]), 0);
    if (c.second_from_another_process) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sdk::ProcessOptions kill;
      kill.argv = {"kill", "-" + std::to_string(c.signals[1]), std::to_string(envd.pid())};
      auto killed = sdk::run_process(kill);
      ASSERT_TRUE(killed && killed->exit_code == 0);
    } else {
      ASSERT_EQ(::kill(envd.pid(), c.signals[1]), 0);
    }
    auto status = envd.wait_exit(std::chrono::seconds(30));
    ASSERT_TRUE(status) << envd.err();
    ASSERT_TRUE(WIFEXITED(*status)) << envd.err();
    EXPECT_EQ(WEXITSTATUS(*status), c.status) << envd.err();
    EXPECT_EQ(envd.err(), "envd: error: " + c.message + "\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, c.at_most);
  }
}

TEST_F(BuilderOptionsCli, BuilderOptFlagsMergeAndConflict) {
  run_ok({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
          "--builder-opt", "cap-add=NET_ADMIN", "--builder-opt", "cap-add=SYS_ADMIN",
          "--builder-opt", "privileged=false"});
  EXPECT_EQ(options("r").at("cap-add"), "NET_ADMIN,SYS_ADMIN");
  EXPECT_EQ(options("r").at("privileged"), "false");

  auto malformed = run({"context", "update", "r", "--builder-opt", "=x"});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_EQ(malformed.err,
            "envd: error: invalid --builder-opt '=x': expected KEY=VALUE (KEY= removes KEY)\n");

  fs::path config = write("buildkitd.toml", "debug = true\n");
  auto twice = run({"context", "update", "r", "--buildkitd-config", config.string(),
                    "--builder-opt", "config=" + config.string()});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_EQ(twice.err,
            "envd: error: --buildkitd-config and --builder-opt config set the same option; give "
            "one\n");

  auto empty = run({"context", "create", "s", "--builder", "test-builder", "--builder-address",
                    "h:1", "--builder-opt", "privileged="});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_EQ(empty.err, "envd: error: --builder-opt privileged needs a value\n");
}

TEST_F(BuilderOptionsCli, UpdateReplacesRemovesAndKeepsFilesOnFailure) {
  ENVD_REQUIRE_MODULES("moby-worker builder");
  fs::path config = write("buildkitd.toml", "debug = true\n");
  run_ok({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
          "--buildkitd-config", config.string(), "--builder-opt", "privileged=false"});
  fs::path stored = private_dir("r") / "files" / "config";
  EXPECT_EQ(read_text(stored), "debug = true\n");

  // A failing update (the second file is not PEM) leaves the stored files alone.
  write_text(config, "debug = false\n");
  fs::path bad = write("bad.pem", "not a certificate\n");
  auto failed = run({"context", "update", "r", "--buildkitd-config", config.string(),
                     "--builder-tls-ca", bad.string()});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(read_text(stored), "debug = true\n");
  EXPECT_EQ(options("r").count("tls-ca"), 0u);

  run_ok({"context", "update", "r", "--buildkitd-config", config.string()});
  EXPECT_EQ(read_text(stored), "debug = false\n");
  EXPECT_EQ(options("r").at("privileged"), "false") << "other options are kept";
  EXPECT_EQ(fs::directory_iterator(private_dir("r") / "files")->path().filename(), "config")
      << "no staging file is left behind";

  run_ok({"context", "update", "r", "--builder-opt", "config="});
  EXPECT_EQ(options("r").count("config"), 0u);
  EXPECT_FALSE(fs::exists(stored));

  // A new builder type starts without the old type's options.
  run_ok({"context", "update", "r", "--buildkitd-config", config.string()});
  run_ok({"context", "update", "r", "--builder", "moby-worker", "--builder-address", ""});
  EXPECT_TRUE(options("r").empty());
  EXPECT_FALSE(fs::exists(stored));
}

TEST_F(BuilderOptionsCli, StoredFilesTravelWithExportAndImport) {
  fs::path ca = write("ca.pem", kPem);
  run_ok({"context", "create", "r", "--builder", "test-builder", "--builder-address", "h:1",
          "--builder-tls-ca", ca.string()});
  fs::path archive = home() / "r.tar";
  run_ok({"context", "export", "r", archive.string()});
  run_ok({"context", "rm", "r"});
  run_ok({"context", "import", "copy", archive.string()});
  EXPECT_EQ(options("copy").at("tls-ca"), "files/tls-ca");
  EXPECT_EQ(read_text(private_dir("copy") / "files" / "tls-ca"), kPem);

  // A stored file replaced by a FIFO or a symbolic link is named for what it
  // is, not reported missing; nothing is written.
  const fs::path stored = private_dir("copy") / "files" / "tls-ca";
  fs::remove(stored);
  ASSERT_EQ(::mkfifo(stored.c_str(), 0600), 0);
  auto fifo = run({"context", "export", "copy", (home() / "fifo.tar").string()});
  EXPECT_EQ(fifo.exit_code, 1);
  EXPECT_EQ(fifo.err, "envd: error: cannot export context 'copy': '" + stored.string() +
                          "' is not a regular file; remove it from the private directory\n");
  fs::remove(stored);
  fs::create_symlink(ca, stored);
  auto link = run({"context", "export", "copy", (home() / "link.tar").string()});
  EXPECT_EQ(link.exit_code, 1);
  EXPECT_NE(link.err.find("'" + stored.string() + "' is a symbolic link"), std::string::npos)
      << link.err;
  EXPECT_FALSE(fs::exists(home() / "fifo.tar"));
  EXPECT_FALSE(fs::exists(home() / "link.tar"));
}

// A client key that is not its certificate's would fail every handshake:
// create and update refuse it, naming both files, and keep what was there.
using TlsPairCli = CliTest;

TEST_F(TlsPairCli, AKeyThatIsNotTheCertificatesIsRefused) {
  ENVD_REQUIRE_MODULES("tcp builder");
  TlsPairFiles a = make_tls_pair(home() / "pki", "a");
  TlsPairFiles b = make_tls_pair(home() / "pki", "b");
  auto create = [&](const std::string& name, const TlsPairFiles& cert, const fs::path& key) {
    return envd({"context", "create", name, "--builder", "tcp", "--builder-address",
                 "127.0.0.1:1234", "--builder-tls-ca", a.cert.string(), "--builder-tls-cert",
                 cert.cert.string(), "--builder-tls-key", key.string()});
  };
  auto mixed = create("mixed", a, b.key);
  EXPECT_EQ(mixed.exit_code, 1);
  EXPECT_EQ(mixed.err, "envd: error: --builder-tls-key '" + b.key.string() +
                           "' does not belong to --builder-tls-cert '" + a.cert.string() +
                           "' (their public keys differ): every connection would fail its TLS "
                           "handshake\n");
  EXPECT_EQ(mixed.out, "");
  EXPECT_EQ(ls_json().size(), 1U) << "only the default context";

  auto matched = create("matched", a, a.key);
  ASSERT_EQ(matched.exit_code, 0) << matched.err;
  // Through --builder-opt too; the stored pair is kept as it was.
  auto update = envd({"context", "update", "matched", "--builder-opt",
                      "tls-cert=" + b.cert.string(), "--builder-opt", "tls-key=" + a.key.string()});
  EXPECT_EQ(update.exit_code, 1);
  EXPECT_EQ(update.err, "envd: error: --builder-opt tls-key '" + a.key.string() +
                            "' does not belong to --builder-opt tls-cert '" + b.cert.string() +
                            "' (their public keys differ): every connection would fail its TLS "
                            "handshake\n");
  json::object stored = stored_context(read_store(), "matched");
  fs::path files = config_dir() / "contexts.d" / std::string(stored.at("id").as_string()) / "files";
  EXPECT_EQ(read_text(files / "tls-cert"), read_text(a.cert));
  EXPECT_EQ(read_text(files / "tls-key"), read_text(a.key));
  EXPECT_EQ(envd({"context", "update", "matched", "--builder-tls-cert", b.cert.string(),
                  "--builder-tls-key", b.key.string()})
                .exit_code,
            0);
  EXPECT_EQ(read_text(files / "tls-key"), read_text(b.key));
  // One of the two given on update is checked against the stored other.
  auto key_alone = envd({"context", "update", "matched", "--builder-tls-key", a.key.string()});
  EXPECT_EQ(key_alone.exit_code, 1);
  EXPECT_EQ(key_alone.err, "envd: error: --builder-tls-key '" + a.key.string() +
                               "' does not belong to the context's stored tls-cert (their public "
                               "keys differ): every connection would fail its TLS handshake\n");
  auto cert_alone = envd({"context", "update", "matched", "--builder-tls-cert", a.cert.string()});
  EXPECT_EQ(cert_alone.exit_code, 1);
  EXPECT_EQ(cert_alone.err,
            "envd: error: the context's stored tls-key does not belong to "
            "--builder-tls-cert '" +
                a.cert.string() +
                "' (their public keys differ): every connection would fail its "
                "TLS handshake\n");
  EXPECT_EQ(read_text(files / "tls-cert"), read_text(b.cert));
  EXPECT_EQ(read_text(files / "tls-key"), read_text(b.key));
  // A certificate renewed for the same key is taken.
  fs::path renewed = home() / "pki" / "b-renewed.pem";
  sdk::ProcessOptions renew;
  renew.argv = {"openssl",        "req",   "-x509", "-new",  "-key", b.key.string(), "-out",
                renewed.string(), "-subj", "/CN=b", "-days", "3"};
  auto made = sdk::run_process(renew);
  ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.error().message());
  auto renewal = envd({"context", "update", "matched", "--builder-tls-cert", renewed.string()});
  EXPECT_EQ(renewal.exit_code, 0) << renewal.err;
  EXPECT_EQ(read_text(files / "tls-cert"), read_text(renewed));

  // PEM blocks that OpenSSL cannot read are named, not taken.
  fs::path garbled = home() / "pki" / "garbled.pem";
  write_text(garbled, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
  auto unreadable = create("garbled", TlsPairFiles{garbled, {}}, a.key);
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_EQ(unreadable.err.rfind("envd: error: --builder-tls-cert '" + garbled.string() +
                                     "' cannot be read as a certificate: ",
                                 0),
            0U)
      << unreadable.err;
}

}  // namespace
}  // namespace envd::test
