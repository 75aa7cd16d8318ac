// The values of the repeatable KEY=VALUE flags (--build-arg, --builder-opt,
// -e/--env) and of -p/--publish, checked before anything is contacted. Each
// error is Errc::invalid_argument, one line naming the flag and quoting its
// value printably (util::printable).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "envd/result.hpp"

namespace envd::cli {

// A flag's value that must be text (it goes into JSON or a protobuf string):
// "invalid <flag> '<value>': it is not UTF-8 text" unless it is UTF-8.
Status check_utf8(std::string_view flag, std::string_view text);

struct KeyValue {
  std::string key;    // never empty, never holds '='
  std::string value;  // may be empty, may hold '='
};

// "KEY=VALUE", cut at the first '='. `flag` ("--build-arg") and `form`
// ("KEY=VALUE (KEY= removes KEY)") word the error.
Result<KeyValue> parse_key_value(std::string_view flag, std::string_view text,
                                 std::string_view form = "KEY=VALUE");

// -e/--env and --build-arg: KEY=VALUE, or a bare KEY (docker's form: the
// value is envd's own environment's, if it has one; `value` is then unset).
struct EnvValue {
  std::string key;  // never empty, never holds '=' or NUL
  std::string value;
  bool bare = false;  // a bare KEY: the caller looks the value up
};
Result<EnvValue> parse_env_value(std::string_view text, std::string_view flag = "--env");

// -p/--publish: [[IP:]HOST:]CONTAINER[/tcp|udp|sctp], as docker run reads
// it: an IPv6 IP in brackets; HOST empty or left out for any free port;
// CONTAINER (and HOST) a port or a range FIRST-LAST, one publish per port
// (a HOST range must be as long as the CONTAINER range).
struct PortPublish {
  std::string host_ip;     // "" for every address; IPv6 without brackets
  int host_port = 0;       // 0: any free port; else 1..65535
  int container_port = 0;  // 1..65535
  std::string protocol = "tcp";

  // The flag value that gives this publish back ("[::1]:8080:80/udp").
  std::string to_string() const;
};
Result<std::vector<PortPublish>> parse_publish(std::string_view text);

// -v/--volume: [SOURCE:]TARGET[:ro|rw], as docker run reads it. SOURCE is a
// host directory (absolute, or relative when it starts with "." and then
// made absolute against `cwd`, as the docker CLI does) or a volume's name;
// without it the volume is anonymous. TARGET is an absolute path in the
// environment, not "/".
struct VolumeMount {
  std::string type;    // "bind" (a host directory) or "volume"
  std::string source;  // the directory, the volume's name, or "" (anonymous)
  std::string target;
  bool read_only = false;
};
Result<VolumeMount> parse_volume(std::string_view text, const std::string& cwd);

// --cpu-set: the CPUs an environment may use, as Linux's cpuset lists them
// ("0-3", "1,3", "0-1,4"); each range ascending. Gives the text back.
Result<std::string> parse_cpu_set(std::string_view text);

// --cap-add: a Linux capability, "SYS_PTRACE" or "cap_sys_ptrace", or ALL.
// Gives the name upper-cased without "CAP_", as the Engine takes it.
Result<std::string> parse_capability(std::string_view text);

// A command line split into words as a POSIX shell splits it, without
// expansions: blanks separate words; '...' is literal; "..." keeps blanks,
// a backslash in it quoting only $ ` " \ and a newline; a backslash outside
// quotes quotes the next character. Errc::invalid_argument "<flag>: ..." for
// an unterminated quote or a trailing backslash.
Result<std::vector<std::string>> split_command_line(std::string_view flag, std::string_view text);

}  // namespace envd::cli
