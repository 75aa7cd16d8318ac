#include "buildkit/content_store.hpp"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <utility>

#include "buildkit/request_metadata.hpp"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "util/text.hpp"

namespace envd::buildkit {

namespace pb = containerd::services::content::v1;
namespace fs = std::filesystem;

namespace {

constexpr const char* kService = "/containerd.services.content.v1.Content/";
// Read answers in chunks of this size, far below gRPC's 4 MiB message limit.
constexpr std::size_t kReadChunk = std::size_t{1} << 20;

using Clock = std::chrono::system_clock;

void set_time(envd::wellknown::Timestamp* out, Clock::time_point t) {
  auto since = t.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  out->set_seconds(seconds.count());
  out->set_nanos(static_cast<int32_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since - seconds).count()));
}

void set_time(envd::wellknown::Timestamp* out, const struct timespec& t) {
  out->set_seconds(t.tv_sec);
  out->set_nanos(static_cast<int32_t>(t.tv_nsec));
}

std::string hex(const unsigned char* bytes, unsigned int n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{n} * 2);
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

// SHA-256 through GNU Nettle (already mapped, for libarchive): a plain struct
// with nothing to start, where OpenSSL 3's first digest loads its
// configuration and providers, about 2 ms of every build's local checks
// (the session key of the build context is a digest; docs/performance.md).
// Nettle's names are used unprefixed by its own macros, one of which would
// rename sha256_digest below; the nettle_ names are called directly.
#undef sha256_digest
class Sha256 {
 public:
  Sha256() { nettle_sha256_init(&ctx_); }
  void update(std::string_view data) {
    nettle_sha256_update(&ctx_, data.size(), reinterpret_cast<const std::uint8_t*>(data.data()));
  }
  // "sha256:<hex>" of what it has seen so far; it keeps going.
  std::string digest_so_far() const {
    sha256_ctx copy = ctx_;
    unsigned char out[SHA256_DIGEST_SIZE];
    nettle_sha256_digest(&copy, SHA256_DIGEST_SIZE, out);
    return "sha256:" + hex(out, SHA256_DIGEST_SIZE);
  }

 private:
  sha256_ctx ctx_{};
};

std::string random_hex() {
  std::random_device device;
  std::uniform_int_distribution<int> nibble(0, 15);
  std::string out;
  for (int i = 0; i < 24; ++i) out += "0123456789abcdef"[nibble(device)];
  return out;
}

std::string printable(const std::string& text) { return util::printable(text, 200); }

grpc::Status errno_status(const std::string& what, int err) {
  return {err == ENOENT ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::INTERNAL,
          what + ": " + std::strerror(err)};
}

grpc::Status invalid_digest(const std::string& digest) {
  return {grpc::StatusCode::INVALID_ARGUMENT,
          "digest '" + printable(digest) + "' is not sha256:<64 lowercase hex digits>"};
}

// One Write in progress (or left for resuming), named by the client's ref.
struct Ingest {
  std::mutex mutex;
  std::string ref;
  fs::path temp;
  int fd = -1;
  int64_t offset = 0;
  int64_t total = 0;
  std::string expected;
  Clock::time_point started_at;
  Clock::time_point updated_at;
  Sha256 hash;
  bool writing = false;  // a Write call holds it
  bool gone = false;     // committed or aborted; the file is no longer ours

  // Closes and removes the temporary file. Holds `mutex`.
  void discard() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (!temp.empty()) ::unlink(temp.c_str());
    gone = true;
  }

  void fill(pb::Status* out) const {
    set_time(out->mutable_started_at(), started_at);
    set_time(out->mutable_updated_at(), updated_at);
    out->set_ref(ref);
    out->set_offset(offset);
    out->set_total(total);
    out->set_expected(expected);
  }
};

struct Store {
  fs::path dir;
  std::mutex mutex;  // guards `ingests` (not the ingests' own fields)
  std::map<std::string, std::shared_ptr<Ingest>> ingests;

  fs::path blob_path(const std::string& digest) const {
    return dir / "blobs" / "sha256" / digest.substr(7);
  }

  std::shared_ptr<Ingest> find(const std::string& ref) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = ingests.find(ref);
    return it == ingests.end() ? nullptr : it->second;
  }

  // Drops `ingest` from the map if it is still the one under its ref.
  void forget(const std::shared_ptr<Ingest>& ingest) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = ingests.find(ingest->ref);
    if (it != ingests.end() && it->second == ingest) ingests.erase(it);
  }
};

}  // namespace

std::string sha256_digest(std::string_view data) {
  Sha256 hash;
  hash.update(data);
  return hash.digest_so_far();
}

bool valid_sha256_digest(std::string_view digest) {
  constexpr std::string_view prefix = "sha256:";
  if (digest.size() != prefix.size() + 64 || digest.substr(0, prefix.size()) != prefix) {
    return false;
  }
  return std::all_of(digest.begin() + prefix.size(), digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

class ContentStoreProvider::Service final : public pb::Content::Service {
 public:
  explicit Service(const std::vector<fs::path>& dirs) {
    for (const auto& dir : dirs) {
      auto store = std::make_unique<Store>();
      store->dir = dir;
      stores_.emplace(store_id(dir), std::move(store));
    }
  }

  ~Service() override {
    for (auto& [id, store] : stores_) {
      std::lock_guard<std::mutex> lock(store->mutex);
      for (auto& [ref, ingest] : store->ingests) {
        std::lock_guard<std::mutex> ingest_lock(ingest->mutex);
        ingest->discard();
      }
      store->ingests.clear();
      ::rmdir((store->dir / "ingest").c_str());  // only when empty
    }
  }

  grpc::Status Info(grpc::ServerContext* context, const pb::InfoRequest* request,
                    pb::InfoResponse* response) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    if (!valid_sha256_digest(request->digest())) return invalid_digest(request->digest());
    struct stat info {};
    if (auto st = stat_blob(*store, request->digest(), &info); !st.ok()) return st;
    auto* out = response->mutable_info();
    out->set_digest(request->digest());
    out->set_size(info.st_size);
    set_time(out->mutable_created_at(), info.st_mtim);
    set_time(out->mutable_updated_at(), info.st_mtim);
    return grpc::Status::OK;
  }

  grpc::Status Update(grpc::ServerContext* context, const pb::UpdateRequest* /*request*/,
                      pb::UpdateResponse* /*response*/) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "update not supported on immutable content store " + store->dir.string()};
  }

  grpc::Status Read(grpc::ServerContext* context, const pb::ReadContentRequest* request,
                    grpc::ServerWriter<pb::ReadContentResponse>* writer) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    if (!valid_sha256_digest(request->digest())) return invalid_digest(request->digest());
    fs::path path = store->blob_path(request->digest());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) return not_found(request->digest(), *store);
      return errno_status("cannot open " + path.string(), err);
    }
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0) return errno_status("cannot stat " + path.string(), errno);
    if (!S_ISREG(info.st_mode)) return not_found(request->digest(), *store);
    int64_t size = info.st_size;
    int64_t offset = std::max<int64_t>(request->offset(), 0);
    if (offset > size) {
      return {grpc::StatusCode::OUT_OF_RANGE,
              "read past object length " + std::to_string(size) + " bytes"};
    }
    int64_t length = request->size();
    if (length <= 0 || length > size - offset) length = size - offset;
    std::string buffer;
    pb::ReadContentResponse chunk;
    while (length > 0) {
      if (context->IsCancelled()) return {grpc::StatusCode::CANCELLED, "read cancelled"};
      buffer.resize(static_cast<std::size_t>(std::min<int64_t>(length, kReadChunk)));
      ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_status("cannot read " + path.string(), errno);
      if (n == 0) return {grpc::StatusCode::DATA_LOSS, path.string() + " shrank while being read"};
      chunk.set_offset(offset);
      chunk.set_data(buffer.data(), static_cast<std::size_t>(n));
      if (!writer->Write(chunk)) return {grpc::StatusCode::CANCELLED, "reader went away"};
      offset += n;
      length -= n;
    }
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext* context, const pb::StatusRequest* request,
                      pb::StatusResponse* response) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    auto ingest = store->find(request->ref());
    if (!ingest) return no_ingest(request->ref());
    std::lock_guard<std::mutex> lock(ingest->mutex);
    if (ingest->gone) return no_ingest(request->ref());
    ingest->fill(response->mutable_status());
    return grpc::Status::OK;
  }

  grpc::Status ListStatuses(grpc::ServerContext* context,
                            const pb::ListStatusesRequest* /*request*/,
                            pb::ListStatusesResponse* response) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    std::vector<std::shared_ptr<Ingest>> ingests;
    {
      std::lock_guard<std::mutex> lock(store->mutex);
      for (const auto& [ref, ingest] : store->ingests) ingests.push_back(ingest);
    }
    for (const auto& ingest : ingests) {
      std::lock_guard<std::mutex> lock(ingest->mutex);
      if (!ingest->gone) ingest->fill(response->add_statuses());
    }
    return grpc::Status::OK;
  }

  grpc::Status Abort(grpc::ServerContext* context, const pb::AbortRequest* request,
                     envd::wellknown::Empty* /*response*/) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    std::shared_ptr<Ingest> ingest;
    {
      std::lock_guard<std::mutex> lock(store->mutex);
      auto it = store->ingests.find(request->ref());
      if (it == store->ingests.end()) return no_ingest(request->ref());
      ingest = it->second;
      store->ingests.erase(it);
    }
    std::lock_guard<std::mutex> lock(ingest->mutex);
    ingest->discard();
    return grpc::Status::OK;
  }

  grpc::Status Write(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<pb::WriteContentResponse, pb::WriteContentRequest>*
                         stream) override {
    Store* store = nullptr;
    if (auto st = choose(*context, &store); !st.ok()) return st;
    pb::WriteContentRequest request;
    if (!stream->Read(&request)) return grpc::Status::OK;
    if (request.ref().empty()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "first message must have a reference"};
    }
    std::shared_ptr<Ingest> ingest;
    if (auto st = acquire(*store, request, &ingest); !st.ok()) return st;
    // Whatever happens below, the ref is free again for another Write.
    struct Release {
      Ingest& ingest;
      ~Release() {
        std::lock_guard<std::mutex> lock(ingest.mutex);
        ingest.writing = false;
      }
    } release{*ingest};

    for (;;) {
      pb::WriteContentResponse response;
      bool committed = false;
      if (auto st = step(*store, ingest, request, &response, &committed); !st.ok()) return st;
      if (!stream->Write(response)) return {grpc::StatusCode::CANCELLED, "writer went away"};
      if (committed) return grpc::Status::OK;
      // A half-close without COMMIT keeps the ingest for a later Write.
      if (!stream->Read(&request)) return grpc::Status::OK;
    }
  }

 private:
  grpc::Status choose(const grpc::ServerContext& context, Store** out) const {
    auto ids = metadata_values(context, kContentStoreIdKey);
    if (ids.empty()) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              std::string("request lacks metadata \"") + kContentStoreIdKey + "\""};
    }
    // BuildKit puts the store it means first.
    auto it = stores_.find(ids.front());
    if (it == stores_.end()) {
      return {grpc::StatusCode::NOT_FOUND, "unknown store " + printable(ids.front())};
    }
    *out = it->second.get();
    return grpc::Status::OK;
  }

  static grpc::Status not_found(const std::string& digest, const Store& store) {
    return {grpc::StatusCode::NOT_FOUND,
            "content " + digest + " not found in " + store.dir.string()};
  }

  static grpc::Status no_ingest(const std::string& ref) {
    return {grpc::StatusCode::NOT_FOUND, "no write in progress for ref " + printable(ref)};
  }

  static grpc::Status stat_blob(const Store& store, const std::string& digest, struct stat* info) {
    fs::path path = store.blob_path(digest);
    if (::lstat(path.c_str(), info) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) return not_found(digest, store);
      return errno_status("cannot stat " + path.string(), err);
    }
    if (!S_ISREG(info->st_mode)) return not_found(digest, store);
    return grpc::Status::OK;
  }

  static bool blob_exists(const Store& store, const std::string& digest) {
    struct stat info {};
    return stat_blob(store, digest, &info).ok();
  }

  // Finds or starts the ingest for the first message's ref and claims it.
  static grpc::Status acquire(Store& store, const pb::WriteContentRequest& first,
                              std::shared_ptr<Ingest>* out) {
    if (!first.expected().empty() && !valid_sha256_digest(first.expected())) {
      return invalid_digest(first.expected());
    }
    std::lock_guard<std::mutex> lock(store.mutex);
    auto& slot = store.ingests[first.ref()];
    if (slot) {
      std::lock_guard<std::mutex> ingest_lock(slot->mutex);
      if (slot->writing) {
        return {grpc::StatusCode::UNAVAILABLE, "ref " + printable(first.ref()) + " locked"};
      }
      slot->writing = true;
      *out = slot;
      return grpc::Status::OK;
    }
    auto ingest = std::make_shared<Ingest>();
    ingest->ref = first.ref();
    ingest->total = first.total();
    ingest->expected = first.expected();
    ingest->started_at = ingest->updated_at = Clock::now();
    ingest->hash = Sha256();
    ingest->writing = true;
    fs::path ingest_dir = store.dir / "ingest";
    std::error_code ec;
    fs::create_directories(ingest_dir, ec);
    if (ec) {
      store.ingests.erase(first.ref());
      return {grpc::StatusCode::INTERNAL,
              "cannot create " + ingest_dir.string() + ": " + ec.message()};
    }
    for (int attempt = 0; attempt < 8 && ingest->fd < 0; ++attempt) {
      ingest->temp = ingest_dir / random_hex();
      ingest->fd =
          ::open(ingest->temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (ingest->fd < 0 && errno != EEXIST) break;
    }
    if (ingest->fd < 0) {
      int err = errno;
      store.ingests.erase(first.ref());
      return errno_status("cannot create a file in " + ingest_dir.string(), err);
    }
    slot = ingest;
    *out = std::move(ingest);
    return grpc::Status::OK;
  }

  // One request of a Write call, as containerd's content server answers it.
  static grpc::Status step(Store& store, const std::shared_ptr<Ingest>& ingest,
                           const pb::WriteContentRequest& request,
                           pb::WriteContentResponse* response, bool* committed) {
    std::unique_lock<std::mutex> lock(ingest->mutex);
    if (ingest->gone) return no_ingest(ingest->ref);
    response->set_action(request.action());
    response->set_offset(ingest->offset);
    if (!request.expected().empty()) {
      if (!valid_sha256_digest(request.expected())) return invalid_digest(request.expected());
      ingest->expected = request.expected();
      if (blob_exists(store, request.expected())) {
        // The daemon takes this as "nothing to write" and moves on.
        ingest->discard();
        lock.unlock();
        store.forget(ingest);
        return {grpc::StatusCode::ALREADY_EXISTS,
                "blob with expected digest " + request.expected() + " exists"};
      }
    }
    if (request.total() > 0) ingest->total = request.total();

    switch (request.action()) {
      case pb::WRITE_ACTION_STAT:
        response->set_digest(ingest->hash.digest_so_far());
        set_time(response->mutable_started_at(), ingest->started_at);
        set_time(response->mutable_updated_at(), ingest->updated_at);
        response->set_total(ingest->total);
        return grpc::Status::OK;
      case pb::WRITE_ACTION_WRITE:
      case pb::WRITE_ACTION_COMMIT:
        break;
      default:
        return {grpc::StatusCode::INVALID_ARGUMENT,
                "unknown write action " + std::to_string(request.action())};
    }
    if (request.offset() > 0 && request.offset() != ingest->offset) {
      return {grpc::StatusCode::OUT_OF_RANGE, "write @" + std::to_string(request.offset()) +
                                                  " must occur at current offset " +
                                                  std::to_string(ingest->offset)};
    }
    if (request.offset() == 0 && ingest->offset > 0) {
      // Writing from 0 again restarts the blob.
      if (::ftruncate(ingest->fd, 0) != 0) {
        return errno_status("cannot truncate " + ingest->temp.string(), errno);
      }
      ingest->offset = 0;
      ingest->hash = Sha256();
      response->set_offset(0);
    }
    if (!request.data().empty()) {
      const std::string& data = request.data();
      std::size_t done = 0;
      while (done < data.size()) {
        ssize_t n = ::pwrite(ingest->fd, data.data() + done, data.size() - done,
                             ingest->offset + static_cast<int64_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_status("cannot write " + ingest->temp.string(), errno);
        done += static_cast<std::size_t>(n);
      }
      ingest->hash.update(data);
      ingest->offset += static_cast<int64_t>(data.size());
      ingest->updated_at = Clock::now();
      response->set_offset(ingest->offset);
    }
    std::string digest = ingest->hash.digest_so_far();
    response->set_digest(digest);
    if (request.action() != pb::WRITE_ACTION_COMMIT) return grpc::Status::OK;

    if (ingest->total > 0 && ingest->offset != ingest->total) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "unexpected commit size " + std::to_string(ingest->offset) + ", expected " +
                  std::to_string(ingest->total)};
    }
    if (!ingest->expected.empty() && digest != ingest->expected) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "unexpected commit digest " + digest + ", expected " + ingest->expected};
    }
    fs::path target = store.blob_path(digest);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return {grpc::StatusCode::INTERNAL,
              "cannot create " + target.parent_path().string() + ": " + ec.message()};
    }
    if (blob_exists(store, digest)) {
      ingest->discard();
      lock.unlock();
      store.forget(ingest);
      return {grpc::StatusCode::ALREADY_EXISTS, "content " + digest + " already exists"};
    }
    if (::fchmod(ingest->fd, 0444) != 0 || ::fsync(ingest->fd) != 0) {
      return errno_status("cannot sync " + ingest->temp.string(), errno);
    }
    if (::rename(ingest->temp.c_str(), target.c_str()) != 0) {
      return errno_status("cannot move a blob to " + target.string(), errno);
    }
    ingest->temp.clear();  // it is the blob now
    ingest->discard();
    lock.unlock();
    store.forget(ingest);
    *committed = true;
    return grpc::Status::OK;
  }

  std::map<std::string, std::unique_ptr<Store>> stores_;
};

std::string ContentStoreProvider::store_id(const fs::path& dir) { return "local:" + dir.string(); }

ContentStoreProvider::ContentStoreProvider(const std::vector<fs::path>& dirs)
    : service_(std::make_unique<Service>(dirs)) {}

ContentStoreProvider::~ContentStoreProvider() = default;

void ContentStoreProvider::register_on(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

std::vector<std::string> ContentStoreProvider::methods() const {
  std::vector<std::string> out;
  for (const char* method :
       {"Info", "Update", "Read", "Status", "ListStatuses", "Write", "Abort"}) {
    out.push_back(std::string(kService) + method);
  }
  return out;
}

}  // namespace envd::buildkit
