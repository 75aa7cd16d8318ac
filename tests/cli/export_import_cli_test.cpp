// `envd context export` / `import`: round trips through files and pipes, the
// refusals (terminal, existing file, taken name, hostile archives).
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cli_harness.hpp"

namespace envd::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class ExportImportCli : public CliTest {
 protected:
  // Creates a tcp context with two private files and returns its data dir.
  fs::path make_context_with_material() {
    envd_ok({"context", "create", "remote", "--builder", "tcp", "--builder-address",
             "10.1.2.3:8888", "--runner", "envd-server", "--runner-address",
             "http://10.1.2.3:8080"});
    auto v = json::parse(envd_ok({"context", "inspect", "remote"}).out);
    fs::path dir(std::string(v.at("storage").at("data_dir").as_string()));
    write_text(dir / "builder" / "ca.pem", "CA-PEM\n");
    write_text(dir / "builder" / "key.pem", "KEY-PEM\n");
    return dir;
  }

  // `args` run with a terminal as stdin (or stdout): its exit status and stderr.
  std::pair<int, std::string> run_on_a_terminal(std::vector<std::string> args, bool as_stdin) {
    int master = -1;
    int slave = -1;
    EXPECT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    sdk::ProcessOptions options;
    options.argv = std::move(args);
    options.env = base_env();
    BackgroundEnvd envd(options, as_stdin ? slave : -1, as_stdin ? -1 : slave);
    ::close(slave);
    EXPECT_EQ(envd.start_error(), "");
    auto status = envd.wait_exit(std::chrono::seconds(30));
    ::close(master);
    EXPECT_TRUE(status && WIFEXITED(*status)) << envd.err();
    return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, envd.err()};
  }
};

TEST_F(ExportImportCli, RoundTripThroughAFile) {
  ENVD_REQUIRE_MODULES("tcp builder", "envd-server runner");
  make_context_with_material();
  fs::path archive = home() / "remote.tar";
  auto out = envd_ok({"context", "export", "remote", archive.string()});
  EXPECT_EQ(out.out, "");
  EXPECT_NE(out.err.find("envd: warning: the archive contains the private material"),
            std::string::npos)
      << out.err;
  EXPECT_EQ(mode_of(archive), 0600u);

  auto in = envd_ok({"context", "import", "copy", archive.string()});
  EXPECT_EQ(in.err, "Context copy is imported\n");
  auto copy = json::parse(envd_ok({"context", "inspect", "copy"}).out).as_object();
  EXPECT_EQ(copy.at("builder_addr"), "tcp://10.1.2.3:8888");
  EXPECT_EQ(copy.at("runner_address"), "http://10.1.2.3:8080");
  fs::path dir(std::string(copy.at("storage").at("data_dir").as_string()));
  EXPECT_EQ(read_text(dir / "builder" / "ca.pem"), "CA-PEM\n");
  EXPECT_EQ(read_text(dir / "builder" / "key.pem"), "KEY-PEM\n");
  EXPECT_EQ(mode_of(dir / "builder" / "key.pem"), 0600u);
  // The copy has its own private directory.
  auto original = json::parse(envd_ok({"context", "inspect", "remote"}).out);
  EXPECT_NE(original.at("storage").at("data_dir"), copy.at("storage").at("data_dir"));
}

TEST_F(ExportImportCli, RoundTripThroughPipes) {
  ENVD_REQUIRE_MODULES("tcp builder", "envd-server runner");
  make_context_with_material();
  auto out = envd_ok({"context", "export", "remote"});
  ASSERT_GT(out.out.size(), 512u);
  auto in = envd({"context", "import", "piped", "-"}, {}, out.out);
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(ls_json().back().at("context"), "piped");
  // /dev/stdout names the same stream (not a file to create: it exists).
  auto named = envd_ok({"context", "export", "remote", "/dev/stdout"});
  in = envd({"context", "import", "named", "-"}, {}, named.out);
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(ls_json().back().at("context"), "named");
}

TEST_F(ExportImportCli, ExportWithoutMaterialDoesNotWarn) {
  auto out = envd_ok({"context", "export", "default", "-"});
  EXPECT_EQ(out.err.find("warning"), std::string::npos) << out.err;
}

// A CA certificate is public: the warning is for private keys.
TEST_F(ExportImportCli, ExportOfACertificateWithoutAKeyDoesNotWarn) {
  ENVD_REQUIRE_MODULES("tcp builder");
  TlsPairFiles ca = make_tls_pair(home() / "pki", "ca");
  envd_ok({"context", "create", "onlyca", "--builder", "tcp", "--builder-address", "10.1.2.3:8888",
           "--builder-tls-ca", ca.cert.string()});
  auto out = envd_ok({"context", "export", "onlyca", "-"});
  EXPECT_EQ(out.err, "Context onlyca is exported to standard output\n");
}

// An unset variable is not standard output: an archive with keys is never
// written where '' happens to lead. Two names where one is taken, and a
// rename to the same name, are said as such.
TEST_F(ExportImportCli, EmptyFileNamesAndExtraNamesAreUsageErrors) {
  auto exported = envd({"context", "export", "default", ""});
  EXPECT_EQ(exported.exit_code, 2);
  EXPECT_EQ(exported.out, "");
  EXPECT_EQ(exported.err.rfind("envd: error: '' is not a file name ('-' is standard output)", 0),
            0u)
      << exported.err;
  auto imported = envd({"context", "import", "x", ""});
  EXPECT_EQ(imported.exit_code, 2);
  EXPECT_EQ(imported.err.rfind("envd: error: '' is not a file name ('-' is standard input)", 0), 0u)
      << imported.err;
  auto inspected = envd({"context", "inspect", "default", "default"});
  EXPECT_EQ(inspected.exit_code, 2);
  EXPECT_EQ(inspected.out, "");
  EXPECT_EQ(inspected.err.rfind("envd: error: expected one context name, got 2", 0), 0u)
      << inspected.err;
  auto renamed = envd_ok({"context", "rename", "default", "default"});
  EXPECT_EQ(renamed.err, "Context default already has that name; nothing is changed\n");
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ExportImportCli, ExportNeverOverwritesAFile) {
  fs::path target = home() / "existing.tar";
  write_text(target, "precious");
  auto r = envd({"context", "export", "default", target.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "envd: error: '" + target.string() +
                       "' already exists; export never overwrites a file\n");
  EXPECT_EQ(read_text(target), "precious");
  fs::create_directories(home() / "exports");
  auto dir = envd({"context", "export", "default", (home() / "exports").string()});
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_EQ(dir.err, "envd: error: '" + (home() / "exports").string() +
                         "' is a directory; give the archive a file name\n");
}

// A hand-edited store whose file option names a path of its own: import
// would refuse the archive, so export refuses to write it.
TEST_F(ExportImportCli, ExportRefusesWhatImportWouldRefuse) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok(
      {"context", "create", "edited", "--builder", "tcp", "--builder-address", "10.1.2.3:8888"});
  json::object store = read_store();
  for (auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name") == "edited") ctx.as_object()["builder_options"] = {{"tls-ca", "/etc/hosts"}};
  }
  write_text(store_file(), json::serialize(store));
  fs::path archive = home() / "edited.tar";
  auto r = envd({"context", "export", "edited", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: cannot export context 'edited': option 'tls-ca' must name its stored "
            "file 'files/tls-ca', not '/etc/hosts'\n");
  EXPECT_FALSE(fs::exists(archive));

  // A stored copy damaged in place (no longer PEM, or grown past 1 MiB).
  TlsPairFiles ca = make_tls_pair(home() / "pki", "ca");
  envd_ok({"context", "create", "damaged", "--builder", "tcp", "--builder-address", "10.1.2.3:8888",
           "--builder-tls-ca", ca.cert.string()});
  auto v = json::parse(envd_ok({"context", "inspect", "damaged"}).out);
  fs::path stored =
      fs::path(std::string(v.at("storage").at("data_dir").as_string())) / "files" / "tls-ca";
  write_text(stored, "garbage\n");
  r = envd({"context", "export", "damaged", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: cannot export context 'damaged': the context's stored file "
            "'files/tls-ca' is not a PEM file (no -----BEGIN line) (import would refuse it; "
            "correct it with envd context update)\n");
  write_text(stored, read_text(ca.cert) + std::string(std::size_t{2} << 20, '\n'));
  r = envd({"context", "export", "damaged", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("larger than 1 MiB (import would refuse it"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(archive));

  // A stored file no option names (the option edited out of the store).
  write_text(stored, read_text(ca.cert));
  store = read_store();
  for (auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name") == "damaged") ctx.as_object().erase("builder_options");
  }
  write_text(store_file(), json::serialize(store));
  r = envd({"context", "export", "damaged", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: cannot export context 'damaged': its private directory holds "
            "'files/tls-ca', a stored file that no option of the context names (import "
            "would refuse it; remove '" +
                stored.string() + "')\n");
  EXPECT_FALSE(fs::exists(archive));
  fs::remove(stored);
  envd_ok({"context", "export", "damaged", archive.string()});
}

// An option the driver refuses (a hand-edited store, an option an older
// driver knew) is refused as import would refuse it, with the way out; the
// way out works.
TEST_F(ExportImportCli, ExportRefusesAnOptionTheDriverRefuses) {
  ENVD_REQUIRE_MODULES("tcp builder");
  envd_ok(
      {"context", "create", "edited", "--builder", "tcp", "--builder-address", "10.1.2.3:8888"});
  json::object store = read_store();
  for (auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name") == "edited") ctx.as_object()["builder_options"] = {{"bogus", "1"}};
  }
  write_text(store_file(), json::serialize(store));
  fs::path archive = home() / "edited.tar";
  auto r = envd({"context", "export", "edited", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "envd: error: cannot export context 'edited': builder 'tcp': unknown option 'bogus' "
            "(allowed: tls-ca, tls-cert, tls-key, tls-servername) (import "
            "would refuse it; correct it with envd context update)\n");
  EXPECT_FALSE(fs::exists(archive));

  envd_ok({"context", "update", "edited", "--builder-opt", "bogus="});
  envd_ok({"context", "export", "edited", archive.string()});
  auto in = envd({"context", "import", "copied", archive.string()});
  EXPECT_EQ(in.exit_code, 0) << in.err;

  // An address the driver refuses is refused too: import would.
  store = read_store();
  for (auto& ctx : store.at("contexts").as_array()) {
    if (ctx.at("name") == "edited") ctx.as_object()["builder_address"] = "not an address";
  }
  write_text(store_file(), json::serialize(store));
  fs::path second = home() / "address.tar";
  auto address = envd({"context", "export", "edited", second.string()});
  EXPECT_EQ(address.exit_code, 1);
  EXPECT_EQ(address.err.rfind("envd: error: cannot export context 'edited': ", 0), 0u)
      << address.err;
  EXPECT_NE(address.err.find("'not an address'"), std::string::npos) << address.err;
  EXPECT_NE(address.err.find("(import would refuse it; correct it with envd context update)\n"),
            std::string::npos)
      << address.err;
  EXPECT_FALSE(fs::exists(second));
}

TEST_F(ExportImportCli, ExportRefusesATerminal) {
  auto [code, err] = run_on_a_terminal({envd_binary(), "context", "export", "default"}, false);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("refusing to write the context archive to a terminal"), std::string::npos)
      << err;
}

TEST_F(ExportImportCli, ImportRefusesATerminal) {
  auto [code, err] = run_on_a_terminal({envd_binary(), "context", "import", "typed", "-"}, true);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err,
            "envd: error: refusing to read a context archive from a terminal; give a FILE or "
            "redirect standard input\n");
}

// With stdout closed (>&-), main puts a stand-in there: the archive would be
// thrown away while envd said it was written.
TEST_F(ExportImportCli, ExportRefusesAClosedStandardOutput) {
  sdk::ProcessOptions options;
  options.argv = {"sh", "-c", "exec \"$0\" context export default - >&-", envd_binary()};
  options.env = base_env();
  options.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(options);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->err,
            "envd: error: standard output is closed, so the context archive would be lost; give "
            "a FILE\n");
}

TEST_F(ExportImportCli, ImportRefusesATakenNameAndBadInput) {
  fs::path archive = home() / "default.tar";
  envd_ok({"context", "export", "default", archive.string()});
  auto taken = envd({"context", "import", "default", archive.string()});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_EQ(taken.err, "envd: error: context 'default' already exists\n");

  auto missing = envd({"context", "import", "x", (home() / "nope.tar").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.tar"), std::string::npos);

  fs::path garbage = home() / "garbage.tar";
  write_text(garbage, std::string(2048, 'g'));
  auto bad = envd({"context", "import", "x", garbage.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("garbage.tar"), std::string::npos) << bad.err;

  auto huge = envd({"context", "import", "x", "-"}, {}, std::string(11 * 1024 * 1024, '\0'));
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_NE(huge.err.find("standard input"), std::string::npos) << huge.err;

  // No bytes at all, from a file or a pipe, and a closed standard input.
  fs::path empty = home() / "empty.tar";
  write_text(empty, "");
  auto nothing = envd({"context", "import", "x", empty.string()});
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_EQ(nothing.err, "envd: error: cannot import file '" + empty.string() +
                             "': it is empty, not a context archive\n");
  auto piped = envd({"context", "import", "x", "-"}, {}, "");
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_EQ(piped.err,
            "envd: error: cannot import standard input: it is empty, not a context archive\n");
  sdk::ProcessOptions closed;
  closed.argv = {"sh", "-c", "exec \"$0\" context import x - <&-", envd_binary()};
  closed.env = base_env();
  closed.timeout = std::chrono::seconds(30);
  auto r = sdk::run_process(closed);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->err,
            "envd: error: standard input is closed, so there is no context archive to read; "
            "give a FILE or redirect standard input\n");
  EXPECT_EQ(ls_json().size(), 1u);
}

TEST_F(ExportImportCli, ImportRevalidatesAddressesThroughTheDrivers) {
  ENVD_REQUIRE_MODULES("tcp builder");
  // An archive whose meta.json carries an address the tcp driver rejects.
  fs::path dir = home() / "hostile";
  write_text(
      dir / "meta.json",
      R"({"name":"x","builder":"tcp","builder_address":"not an address","runner":"docker"})");
  fs::path archive = home() / "hostile.tar";
  sdk::ProcessOptions tar;
  tar.argv = {"tar", "-C", dir.string(), "-cf", archive.string(), "meta.json"};
  auto made = sdk::run_process(tar);
  ASSERT_TRUE(made && made->succeeded());
  auto r = envd({"context", "import", "x", archive.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("host:port"), std::string::npos) << r.err;
  EXPECT_EQ(ls_json().size(), 1u);
}

// An archive is anyone's: its files are held to what `context create`
// takes, and a login (which export never writes) is not installed for the
// runner to use.
TEST_F(ExportImportCli, ImportHoldsTheArchivesFilesToWhatCreateTakes) {
  ENVD_REQUIRE_MODULES("tcp builder", "envd-server runner");
  const std::string meta = R"({"name":"x","builder":"tcp","builder_address":"10.1.2.3:8888",)"
                           R"("builder_options":{"tls-ca":"files/tls-ca"},"runner":"envd-server",)"
                           R"("runner_address":"http://10.1.2.3:8080"})";
  const std::string pem = kTestCaPem;
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> files;  // under material/
    std::string error;
  };
  std::vector<Case> cases = {
      {"notpem",
       {{"files/tls-ca", "not pem\n"}},
       "entry 'material/files/tls-ca' is not a PEM file (no -----BEGIN line)"},
      {"garbled",
       {{"files/tls-ca", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}},
       "entry 'material/files/tls-ca' cannot be read as a certificate: "},
      {"huge",
       {{"files/tls-ca", pem + std::string(std::size_t{3} << 20, 'x')}},
       "entry 'material/files/tls-ca' is larger than 1 MiB"},
      {"login",
       {{"files/tls-ca", pem},
        {"runner-login.json", R"({"identity_token":"t","identity_file":"/etc/shadow"})"}},
       "entry 'material/runner-login.json' is a login, which envd never exports; log in with "
       "'envd login' after the import instead"},
      // A key no option names would be installed, used by nothing, and
      // carried on by every export.
      {"unnamed",
       {{"files/tls-ca", pem}, {"files/tls-key", "-----BEGIN PRIVATE KEY-----\n"}},
       "entry 'material/files/tls-key' is a stored file that no option of the context names; "
       "remove it from the archive or set the option it belongs to"},
  };
  // A client key that is not its certificate's, as create refuses it.
  const std::string pair_meta =
      R"({"name":"x","builder":"tcp","builder_address":"10.1.2.3:8888",)"
      R"("builder_options":{"tls-cert":"files/tls-cert","tls-key":"files/tls-key"},)"
      R"("runner":"envd-server","runner_address":"http://10.1.2.3:8080"})";
  TlsPairFiles a = make_tls_pair(home() / "pki", "a");
  TlsPairFiles b = make_tls_pair(home() / "pki", "b");
  cases.push_back(
      {"mismatch",
       {{"files/tls-cert", read_text(a.cert)}, {"files/tls-key", read_text(b.key)}},
       "entry 'material/files/tls-key' does not belong to entry 'material/files/tls-cert' (their "
       "public keys differ): every connection would fail its TLS handshake"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    fs::path dir = home() / c.name;
    write_text(dir / "meta.json", c.name == "mismatch" ? pair_meta : meta);
    std::vector<std::string> entries = {"meta.json", "material"};
    for (const auto& [rel, content] : c.files) write_text(dir / "material" / rel, content);
    fs::path archive = home() / (c.name + ".tar");
    sdk::ProcessOptions tar;
    tar.argv = {"tar", "-C", dir.string(), "-cf", archive.string()};
    tar.argv.insert(tar.argv.end(), entries.begin(), entries.end());
    auto made = sdk::run_process(tar);
    ASSERT_TRUE(made && made->succeeded());
    auto r = envd({"context", "import", c.name, archive.string()});
    EXPECT_EQ(r.exit_code, 1);
    const std::string said =
        "envd: error: cannot import file '" + archive.string() + "': " + c.error;
    if (c.error.back() == ' ') {
      EXPECT_EQ(r.err.rfind(said, 0), 0U) << r.err;  // OpenSSL's reason follows
    } else {
      EXPECT_EQ(r.err, said + "\n");
    }
  }
  EXPECT_EQ(ls_json().size(), 1u);
}

}  // namespace
}  // namespace envd::test
