#include "context/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <clocale>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "context/test_support.hpp"

namespace envd::context {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::mode_of;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

const std::string kSource = "file 'x.tar'";
const std::string kInvalid = kSource + " is not a valid context archive: ";
const std::string kMeta =
    R"({"name": "src", "builder": "tcp", "builder_address": "h:1", "runner": "docker"})";

// ---- building and listing tars in tests --------------------------------------------

struct TarEntry {
  TarEntry(std::string p, unsigned t = AE_IFREG, std::string c = {}, std::string s = {},
           std::string h = {})
      : path(std::move(p)),
        type(t),
        content(std::move(c)),
        symlink(std::move(s)),
        hardlink(std::move(h)) {}
  std::string path;
  unsigned type;
  std::string content;
  std::string symlink;   // target, for AE_IFLNK
  std::string hardlink;  // target of a hard link entry
};

// Opens writer `a` into `out`, which must outlive the writer.
void write_into(archive* a, std::string& out) {
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
}

std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  write_into(a, out);
  for (const TarEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0644);
    if (!e.symlink.empty()) archive_entry_set_symlink(entry, e.symlink.c_str());
    if (!e.hardlink.empty()) archive_entry_set_hardlink(entry, e.hardlink.c_str());
    if (e.type == AE_IFCHR || e.type == AE_IFBLK) archive_entry_set_rdev(entry, makedev(1, 3));
    bool has_data = e.type == AE_IFREG && e.hardlink.empty();
    archive_entry_set_size(entry, has_data ? static_cast<la_int64_t>(e.content.size()) : 0);
    // WARN: a name the C locale cannot convert is written as raw bytes, as wanted here.
    EXPECT_GE(archive_write_header(a, entry), ARCHIVE_WARN) << archive_error_string(a);
    if (has_data && !e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

struct Listed {
  std::string path;
  unsigned type;
  unsigned perm;
  long long mtime;
  long long uid;
  long long gid;
  std::string content;
};

std::vector<Listed> list_tar(const std::string& bytes) {
  std::vector<Listed> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    Listed l{archive_entry_pathname(entry),
             archive_entry_filetype(entry),
             static_cast<unsigned>(archive_entry_perm(entry)),
             archive_entry_mtime(entry),
             archive_entry_uid(entry),
             archive_entry_gid(entry),
             {}};
    char buf[4096];
    for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;) {
      l.content.append(buf, static_cast<size_t>(n));
    }
    out.push_back(std::move(l));
  }
  archive_read_free(a);
  return out;
}

class ArchiveTest : public ::testing::Test {
 protected:
  ContextStore store() const { return ContextStore(tmp_.path() / "envd"); }

  // A stored context with every field set and some private material.
  Context stored_context() {
    Context ctx;
    ctx.name = "remote";
    ctx.builder = "tcp";
    ctx.builder_address = "10.0.0.1:8888";
    ctx.runner = "envd-server";
    ctx.runner_address = "http://10.0.0.1:8080";
    ctx.builder_options = {{"tls", "true"}, {"servername", "build"}};
    ctx.runner_options = {{"timeout", "5s"}};
    ctx.unknown_fields["x-future"] = "kept";
    ctx.id = "00000000000000aa";
    EXPECT_TRUE(store()
                    .update([&](ContextList& l) -> Status {
                      l.contexts.push_back(ctx);
                      return {};
                    })
                    .ok());
    return ctx;
  }

  fs::path add_material(const Context& ctx) {
    auto dir = store().ensure_data_dir(ctx);
    EXPECT_TRUE(dir.ok());
    fs::create_directories(*dir / "builder");
    write_text(*dir / "builder" / "ca.pem", "CA-PEM\n");
    write_text(*dir / "builder" / "key.pem", "KEY-PEM\n");
    write_text(*dir / "token", std::string("bin\0ary", 7));
    return *dir;
  }

  Result<ContextArchive> parse(const std::vector<TarEntry>& entries) {
    return parse_archive(make_tar(entries), kSource);
  }

  TempDir tmp_;
};

// ---- export ------------------------------------------------------------------------

TEST_F(ArchiveTest, ExportThenParseGivesTheContextAndItsMaterialBack) {
  Context ctx = stored_context();
  add_material(ctx);
  auto bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();

  auto parsed = parse_archive(*bytes, kSource);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  const Context& got = parsed->context;
  EXPECT_EQ(got.name, "remote");
  EXPECT_EQ(got.builder, "tcp");
  EXPECT_EQ(got.builder_address, "10.0.0.1:8888");
  EXPECT_EQ(got.runner, "envd-server");
  EXPECT_EQ(got.runner_address, ctx.runner_address);
  EXPECT_EQ(got.builder_options, ctx.builder_options);
  EXPECT_EQ(got.runner_options, ctx.runner_options);
  EXPECT_EQ(got.unknown_fields, ctx.unknown_fields);
  EXPECT_TRUE(got.id.empty());
  std::vector<std::pair<std::string, std::string>> expected = {
      {"builder/ca.pem", "CA-PEM\n"},
      {"builder/key.pem", "KEY-PEM\n"},
      {"token", std::string("bin\0ary", 7)},
  };
  EXPECT_EQ(parsed->material, expected);
}

TEST_F(ArchiveTest, TheArchiveLayoutIsFixedAndDeterministic) {
  Context ctx = stored_context();
  fs::path dir = add_material(ctx);
  auto first = export_archive(store(), ctx);
  ASSERT_TRUE(first.ok()) << first.error().message();

  // Different mtimes and modes on disk change nothing.
  fs::last_write_time(dir / "token", fs::file_time_type::clock::now() - std::chrono::hours(5));
  ::chmod((dir / "builder" / "ca.pem").c_str(), 0644);
  auto second = export_archive(store(), ctx);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);

  std::vector<Listed> entries = list_tar(*first);
  std::vector<std::string> paths;
  for (const Listed& e : entries) {
    paths.push_back(e.path);
    EXPECT_EQ(e.mtime, 0) << e.path;
    EXPECT_EQ(e.uid, 0) << e.path;
    EXPECT_EQ(e.gid, 0) << e.path;
    if (e.type == AE_IFDIR) {
      EXPECT_EQ(e.perm, 0700u) << e.path;
    } else {
      EXPECT_EQ(e.type, static_cast<unsigned>(AE_IFREG)) << e.path;
      EXPECT_EQ(e.perm, 0600u) << e.path;
    }
  }
  EXPECT_EQ(paths,
            (std::vector<std::string>{"material/", "material/builder/", "material/builder/ca.pem",
                                      "material/builder/key.pem", "material/token", "meta.json"}));
  // meta.json is the record without id or current.
  json::object meta = json::parse(entries.back().content).as_object();
  EXPECT_FALSE(meta.contains("id"));
  EXPECT_FALSE(meta.contains("current"));
  EXPECT_EQ(meta.at("name"), "remote");
  EXPECT_EQ(meta.at("runner_address"), "http://10.0.0.1:8080");
  EXPECT_EQ(meta.at("builder_options").at("servername"), "build");
  EXPECT_EQ(meta.at("x-future"), "kept");
}

TEST_F(ArchiveTest, AContextWithoutMaterialExportsOnlyMetaJson) {
  Context ctx = stored_context();
  auto bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  std::vector<Listed> entries = list_tar(*bytes);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "meta.json");
  auto parsed = parse_archive(*bytes, kSource);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_TRUE(parsed->material.empty());
}

TEST_F(ArchiveTest, ExportRefusesLinksAndSpecialFilesInThePrivateDirectory) {
  Context ctx = stored_context();
  fs::path dir = add_material(ctx);
  fs::create_symlink("/etc/passwd", dir / "builder" / "link.pem");
  auto r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "cannot export context 'remote': '" + (dir / "builder" / "link.pem").string() +
                "' is a symbolic link; the private directory may hold only regular files, "
                "replace the link with the file it points to");
  fs::remove(dir / "builder" / "link.pem");

  fs::create_directory_symlink(tmp_.path(), dir / "linkdir");
  r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("linkdir' is a symbolic link"), std::string::npos)
      << r.error().message();
  fs::remove(dir / "linkdir");

  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("pipe' is not a regular file"), std::string::npos)
      << r.error().message();
  fs::remove(dir / "pipe");

  write_text(dir / "back\\slash", "x");
  r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("contains a backslash, which an archive cannot carry"),
            std::string::npos)
      << r.error().message();
  fs::remove(dir / "back\\slash");

  EXPECT_TRUE(export_archive(store(), ctx).ok());
}

// run/ holds what a driver keeps only while it runs here: the
// docker-container driver's mount for buildkitd's socket. A socket there
// does not stop an export, and nothing under run/ is carried.
TEST_F(ArchiveTest, TheRuntimeDirectoryStaysOnThisMachine) {
  Context ctx = stored_context();
  fs::path dir = add_material(ctx);
  fs::create_directories(dir / "run" / "sub");
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = (dir / "run" / "buildkitd.sock").string();
  ASSERT_LT(path.size(), sizeof addr.sun_path) << path;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ::close(sock);
  write_text(dir / "run" / "sub" / "state", "x");
  auto bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  for (const auto& entry : list_tar(*bytes)) {
    EXPECT_EQ(entry.path.find("/run"), std::string::npos) << entry.path;
  }
  // Whatever stands where the runtime directory goes stays too: a file
  // there is no option's, and import refuses it (it would stand in the way
  // of the driver that makes the directory).
  fs::remove_all(dir / "run");
  write_text(dir / "run", "not a directory");
  bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  for (const auto& entry : list_tar(*bytes)) EXPECT_FALSE(entry.path.ends_with("/run"));
}

// What an update killed between staging and commit leaves (files/.KEY.new)
// is not the option: export leaves it out, so that import, which refuses it,
// takes every export.
TEST_F(ArchiveTest, AnInterruptedUpdatesStagedFileStaysOnThisMachine) {
  Context ctx = stored_context();
  fs::path dir = add_material(ctx);
  fs::create_directories(dir / "files");
  write_text(dir / "files" / ".tls-ca.new", "half an update");
  write_text(dir / "files" / ".hidden", "material");
  auto bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  bool hidden = false;
  for (const auto& entry : list_tar(*bytes)) {
    EXPECT_EQ(entry.path.find(".new"), std::string::npos) << entry.path;
    hidden = hidden || entry.path == "material/files/.hidden";
  }
  EXPECT_TRUE(hidden);
  auto parsed = parse_archive(*bytes, kSource);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message();
}

TEST_F(ArchiveTest, ExportRefusesAPrivateDirectoryThatIsALink) {
  Context ctx = stored_context();
  fs::create_directories(store().data_root());
  fs::create_directory_symlink(tmp_.path(), store().data_dir(ctx));
  auto r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("is not a directory; move it aside"), std::string::npos)
      << r.error().message();
}

TEST_F(ArchiveTest, ExportRefusesMoreThanAnImportAccepts) {
  Context ctx = stored_context();
  fs::path dir = add_material(ctx);
  write_text(dir / "huge", std::string(kMaxArchiveBytes, 'x'));
  auto r = export_archive(store(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("more than the 10485760 an import accepts"), std::string::npos)
      << r.error().message();
}

// ---- import: accepted shapes -----------------------------------------------------------

TEST_F(ArchiveTest, DirectoryEntriesAreOptional) {
  auto r = parse({{"material/deep/er/file", AE_IFREG, "x"}, {"meta.json", AE_IFREG, kMeta}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->material.size(), 1u);
  EXPECT_EQ(r->material[0].first, "deep/er/file");
  EXPECT_EQ(r->context.name, "src");
}

// ---- import: every rejection ------------------------------------------------------------

// As a store entry: a key given twice would keep one value silently.
TEST_F(ArchiveTest, AKeyRepeatedInMetaJsonIsRejected) {
  auto r = parse({{"meta.json", AE_IFREG,
                   R"({"name":"x","builder":"unix","builder":"tcp","builder_address":"h:1",)"
                   R"("runner":"docker"})"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("entry 'meta.json': the key 'builder' appears twice in one "
                                     "object"),
            std::string::npos)
      << r.error().message();
}

TEST_F(ArchiveTest, OversizedInputIsRejectedBeforeParsing) {
  std::string big(kMaxArchiveBytes + 1, '\0');
  auto r = parse_archive(big, kSource);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            kInvalid + "it is larger than 10485760 bytes, the limit for a context archive");
}

TEST_F(ArchiveTest, GarbageEmptyAndTruncatedInputsAreRejected) {
  for (const std::string& bytes :
       {std::string("this is not a tar archive at all"), std::string(), std::string(2048, 'x')}) {
    auto r = parse_archive(bytes, kSource);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message().rfind(kInvalid, 0), 0u) << r.error().message();
  }
  std::string whole =
      make_tar({{"material/a", AE_IFREG, std::string(5000, 'a')}, {"meta.json", AE_IFREG, kMeta}});
  auto r = parse_archive(whole.substr(0, 2048), kSource);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message().rfind(kInvalid, 0), 0u) << r.error().message();
}

// A damaged archive is said to break after the last entry read whole.
TEST_F(ArchiveTest, ADamagedArchiveNamesTheEntryBeforeTheDamage) {
  std::string whole =
      make_tar({{"material/a", AE_IFREG, std::string(5000, 'a')}, {"meta.json", AE_IFREG, kMeta}});
  // Past material/a's header (512) and its data (5,000, padded to 5,120),
  // inside meta.json's pax header.
  auto r = parse_archive(whole.substr(0, 512 + 5120 + 100), kSource);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), kInvalid + "the entry after 'material/a': Truncated tar archive");
}

// A pax archive (as GNU tar and Python write them) carries a non-ASCII name
// in UTF-8, which libarchive cannot convert in envd's C locale: a warning
// with the entry, which is refused by its name as any other non-ASCII one.
TEST_F(ArchiveTest, AUtf8NameInAPaxHeaderIsRefusedByName) {
  // Written as in a UTF-8 locale; read back in envd's.
  ASSERT_NE(std::setlocale(LC_CTYPE, "C.UTF-8"), nullptr);
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  write_into(a, out);
  for (const char* name : {"meta.json", "material/caf\xc3\xa9.pem"}) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name);
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    const std::string content = name[0] == 'm' && name[1] == 'e' ? kMeta : "x";
    archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
    EXPECT_GE(archive_write_header(a, entry), ARCHIVE_WARN) << archive_error_string(a);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  std::setlocale(LC_CTYPE, "C");
  ASSERT_NE(out.find("path=material/caf\xc3\xa9.pem"), std::string::npos) << "no pax path record";

  auto r = parse_archive(out, kSource);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            kInvalid + "entry 'material/caf\xc3\xa9.pem' has a name that is not printable ASCII");
}

struct Rejection {
  const char* label;
  std::vector<TarEntry> entries;
  std::string message;  // after kInvalid
};

std::vector<Rejection> rejections() {
  const TarEntry meta{"meta.json", AE_IFREG, kMeta};
  return {
      {"absolute",
       {meta, {"/etc/cron.d/x", AE_IFREG, "x"}},
       "entry '/etc/cron.d/x' is an absolute path"},
      {"dotdot",
       {meta, {"material/../../x", AE_IFREG, "x"}},
       "entry 'material/../../x' has a '..' path component"},
      {"leading dotdot", {meta, {"../x", AE_IFREG, "x"}}, "entry '../x' has a '..' path component"},
      {"dot",
       {{"./meta.json", AE_IFREG, kMeta}},
       "entry './meta.json' is not in clean form ('.' path component)"},
      {"double slash",
       {meta, {"material//a", AE_IFREG, "x"}},
       "entry 'material//a' is not in clean form (empty path component)"},
      {"backslash",
       {meta, {"material\\..\\x", AE_IFREG, "x"}},
       "entry 'material\\..\\x' contains a backslash"},
      {"non-ascii",
       {meta, {"material/caf\xc3\xa9", AE_IFREG, "x"}},
       "entry 'material/caf\xc3\xa9' has a name that is not printable ASCII"},
      {"control",
       {meta, {"material/a\x1b", AE_IFREG, "x"}},
       "entry 'material/a\\x1b' has a name that is not printable ASCII"},
      {"symlink",
       {meta, {"material/ca.pem", AE_IFLNK, "", "/etc/passwd"}},
       "entry 'material/ca.pem' is a symbolic link"},
      {"hardlink",
       {meta, {"material/ca.pem", AE_IFREG, "", "", "meta.json"}},
       "entry 'material/ca.pem' is a hard link"},
      {"char device", {meta, {"material/null", AE_IFCHR}}, "entry 'material/null' is a device"},
      {"block device", {meta, {"material/disk", AE_IFBLK}}, "entry 'material/disk' is a device"},
      {"fifo", {meta, {"material/fifo", AE_IFIFO}}, "entry 'material/fifo' is a FIFO"},
      {"runtime file",
       {meta, {"material/run/buildkitd.sock", AE_IFREG, "x"}},
       "entry 'material/run/buildkitd.sock' is in the runtime directory, which an export never "
       "carries"},
      {"runtime directory",
       {meta, {"material/run", AE_IFDIR}},
       "entry 'material/run' is in the runtime directory, which an export never carries"},
      // A file where the runtime directory goes would stand in the way of
      // the driver that makes it (docker-container mounts it).
      {"file as the runtime directory",
       {meta, {"material/run", AE_IFREG, "x"}},
       "entry 'material/run' is in the runtime directory, which an export never carries"},
      {"staged file option",
       {meta, {"material/files/.tls-ca.new", AE_IFREG, "x"}},
       "entry 'material/files/.tls-ca.new' is a file option staged by an update, which an export "
       "never carries"},
      {"unknown top level",
       {meta, {"tls/docker/ca.pem", AE_IFREG, "x"}},
       "entry 'tls/docker/ca.pem' is not part of a context archive (only meta.json and "
       "material/...)"},
      {"near miss",
       {meta, {"materials/x", AE_IFREG, "x"}},
       "entry 'materials/x' is not part of a context archive (only meta.json and material/...)"},
      {"meta is a directory",
       {{"meta.json", AE_IFDIR}},
       "entry 'meta.json' must be a regular file"},
      {"material is a file",
       {meta, {"material", AE_IFREG, "x"}},
       "entry 'material' must be a directory"},
      {"duplicate file",
       {meta, {"material/a", AE_IFREG, "1"}, {"material/a", AE_IFREG, "2"}},
       "entry 'material/a' appears twice"},
      {"duplicate meta", {meta, meta}, "entry 'meta.json' appears twice"},
      {"file and directory",
       {meta, {"material/a", AE_IFDIR}, {"material/a", AE_IFREG, "x"}},
       "entry 'material/a' appears twice"},
      {"file with entries inside",
       {meta, {"material/a", AE_IFREG, "x"}, {"material/a/b", AE_IFREG, "y"}},
       "entry 'material/a' is a file, yet 'material/a/b' is inside it"},
      {"no meta", {{"material/a", AE_IFREG, "x"}}, "it has no meta.json"},
      {"meta not JSON",
       {{"meta.json", AE_IFREG, "{\"name\": "}},
       "entry 'meta.json': invalid JSON at line 1, column 10: incomplete JSON"},
      {"meta carries id",
       {{"meta.json", AE_IFREG,
         R"({"name": "a", "builder": "tcp", "builder_address": "h", "runner": "docker", "id": "x"})"}},
       "entry 'meta.json': must not carry 'id' (the importing store assigns it)"},
      {"meta carries current",
       {{"meta.json", AE_IFREG, R"({"current": "a", "name": "a"})"}},
       "entry 'meta.json': must not carry 'current' (the importing store assigns it)"},
      {"meta missing builder",
       {{"meta.json", AE_IFREG, R"({"name": "a", "builder_address": "h", "runner": "docker"})"}},
       "entry 'meta.json': field 'builder' must be a string"},
      {"meta invalid name",
       {{"meta.json", AE_IFREG,
         R"({"name": "../a", "builder": "tcp", "builder_address": "h", "runner": "docker"})"}},
       "entry 'meta.json': invalid context name '../a': names start with a letter or digit and "
       "contain only letters, digits, '_', '.', '+' and '-' (at most 64 characters)"},
      {"meta bad options",
       {{"meta.json", AE_IFREG,
         R"({"name": "a", "builder": "tcp", "builder_address": "h", "runner": "docker",
             "builder_options": {"tls": true}})"}},
       "entry 'meta.json': field 'builder_options' must be an object of strings ('tls' is not a "
       "string)"},
      {"meta with a number a store write would change",
       {{"meta.json", AE_IFREG,
         R"({"name": "a", "builder": "tcp", "builder_address": "h", "runner": "docker",
             "x-size": 99999999999999999999})"}},
       "entry 'meta.json': the number 99999999999999999999 cannot be kept exactly (a write would "
       "make it 1e+20); quote it as a string"},
      {"meta not an object",
       {{"meta.json", AE_IFREG, "[]"}},
       "entry 'meta.json': a context must be a JSON object"},
  };
}

TEST_F(ArchiveTest, EveryRejectionHasAOneLineMessageNamingTheSourceAndEntry) {
  for (const Rejection& rejection : rejections()) {
    SCOPED_TRACE(rejection.label);
    auto r = parse(rejection.entries);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::invalid_argument);
    EXPECT_EQ(r.error().message(), kInvalid + rejection.message);
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
}

// ---- install ---------------------------------------------------------------------------

TEST_F(ArchiveTest, InstallWritesPrivateFilesUnderTheNewContextsDirectory) {
  Context ctx = stored_context();
  add_material(ctx);
  auto bytes = export_archive(store(), ctx);
  ASSERT_TRUE(bytes.ok());
  auto parsed = parse_archive(*bytes, kSource);
  ASSERT_TRUE(parsed.ok());

  Context copy = parsed->context;
  copy.name = "copy";
  copy.id = new_context_id();
  mode_t old_umask = ::umask(022);
  Status st = install_material(store(), copy, *parsed);
  ::umask(old_umask);
  ASSERT_TRUE(st.ok()) << st.error().message();
  fs::path dir = store().data_dir(copy);
  EXPECT_NE(dir, store().data_dir(ctx));
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir / "builder"), 0700u);
  EXPECT_EQ(read_text(dir / "builder" / "ca.pem"), "CA-PEM\n");
  EXPECT_EQ(read_text(dir / "builder" / "key.pem"), "KEY-PEM\n");
  EXPECT_EQ(read_text(dir / "token"), std::string("bin\0ary", 7));
  for (const char* file : {"builder/ca.pem", "builder/key.pem", "token"}) {
    EXPECT_EQ(mode_of(dir / file), 0600u) << file;
  }
  EXPECT_FALSE(fs::exists(dir / "token.tmp"));
}

TEST_F(ArchiveTest, InstallRefusesUnsafePathsAndWritesNothing) {
  Context ctx;
  ctx.name = "x";
  ctx.id = "0123456789abcdef";
  for (const std::string bad : {"../escape", "/abs", "a/../../b", "a\\b", ""}) {
    ContextArchive archive;
    archive.material = {{"fine", "1"}, {bad, "2"}};
    Status st = install_material(store(), ctx, archive);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().message().rfind("cannot install the private material of context 'x': ", 0),
              0u)
        << st.error().message();
    EXPECT_FALSE(fs::exists(store().data_dir(ctx))) << bad;
  }
  EXPECT_FALSE(fs::exists(tmp_.path() / "escape"));
}

TEST_F(ArchiveTest, AFailedInstallRemovesTheDirectoryItCreated) {
  Context ctx;
  ctx.name = "x";
  ctx.id = "0123456789abcdef";
  ContextArchive archive;
  archive.material = {{"a", "file"}, {"a/b", "cannot live under a file"}};
  Status st = install_material(store(), ctx, archive);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(fs::exists(store().data_dir(ctx)));
}

TEST_F(ArchiveTest, InstallNeedsAnId) {
  Context ctx;
  ctx.name = "x";
  ContextArchive archive;
  archive.material = {{"a", "1"}};
  Status st = install_material(store(), ctx, archive);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("has no valid id"), std::string::npos);
}

}  // namespace
}  // namespace envd::context
