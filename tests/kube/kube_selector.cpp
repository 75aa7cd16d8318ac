#include "kube_selector.hpp"

#include <algorithm>
#include <exception>

namespace envd::test::kube {

namespace {

enum class Tok {
  error,
  end,
  close_par,
  comma,
  not_exists,
  double_equals,
  equals,
  greater,
  identifier,
  in,
  less,
  not_equals,
  not_in,
  open_par
};

struct Item {
  Tok tok;
  std::string lit;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_special(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

std::optional<Tok> keyword(const std::string& s) {
  static const std::pair<const char*, Tok> kWords[] = {
      {")", Tok::close_par},   {",", Tok::comma},
      {"!", Tok::not_exists},  {"==", Tok::double_equals},
      {"=", Tok::equals},      {">", Tok::greater},
      {"in", Tok::in},         {"<", Tok::less},
      {"!=", Tok::not_equals}, {"notin", Tok::not_in},
      {"(", Tok::open_par}};
  for (const auto& [w, t] : kWords) {
    if (s == w) return t;
  }
  return std::nullopt;
}

std::vector<Item> lex(const std::string& s) {
  std::vector<Item> items;
  std::size_t pos = 0;
  for (;;) {
    while (pos < s.size() && is_space(s[pos])) ++pos;
    if (pos >= s.size()) {
      items.push_back({Tok::end, ""});
      return items;
    }
    if (is_special(s[pos])) {
      std::string buffer;
      std::optional<Item> last;
      while (pos < s.size() && is_special(s[pos])) {
        buffer += s[pos];
        if (auto t = keyword(buffer)) {
          last = Item{*t, buffer};
          ++pos;
        } else if (last) {
          break;
        } else {
          ++pos;
        }
      }
      items.push_back(last ? *last
                           : Item{Tok::error, "error expected: keyword found '" + buffer + "'"});
    } else {
      std::string buffer;
      while (pos < s.size() && !is_special(s[pos]) && !is_space(s[pos])) buffer += s[pos++];
      auto t = keyword(buffer);
      items.push_back({t ? *t : Tok::identifier, buffer});
    }
  }
}

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool qualified_name_part(const std::string& s) {
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

std::string key_error(const std::string& key) {
  auto slash = key.find('/');
  std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  if (slash != std::string::npos && slash == 0) {
    return "Invalid value: \"" + key + "\": prefix part must be non-empty";
  }
  if (qualified_name_part(name) && key.find('/', slash + 1) == std::string::npos) return "";
  return "Invalid value: \"" + key +
         "\": name part must consist of alphanumeric characters, '-', '_' or '.', and must "
         "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
         "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
}

std::string value_error(const std::string& key, const std::string& value) {
  if (value.empty() || qualified_name_part(value)) return "";
  return "values[0][" + key + "]: Invalid value: \"" + value +
         "\": a valid label must be an empty string or consist of alphanumeric characters, '-', "
         "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
         "'my_value',  or '12345', regex used for validation is "
         "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
}

}  // namespace

std::optional<Selector> Selector::parse(const std::string& text, std::string* error) {
  std::vector<Item> items = lex(text);
  std::size_t at = 0;
  // In the Values context the keywords in and notin are identifiers.
  auto values_tok = [](Tok t) { return t == Tok::in || t == Tok::not_in ? Tok::identifier : t; };
  auto peek = [&](bool values) {
    Item i = items[at];
    if (values) i.tok = values_tok(i.tok);
    return i;
  };
  auto take = [&](bool values) {
    Item i = peek(values);
    ++at;
    return i;
  };
  Selector selector;
  auto requirement = [&](std::string* err) -> std::optional<Requirement> {
    Requirement r;
    Item first = take(true);
    bool not_exists = false;
    if (first.tok == Tok::not_exists) {
      not_exists = true;
      first = take(true);
    }
    if (first.tok != Tok::identifier) {
      *err = "found '" + first.lit + "', expected: identifier";
      return std::nullopt;
    }
    r.key = first.lit;
    if (auto e = key_error(r.key); !e.empty()) {
      *err = e;
      return std::nullopt;
    }
    Tok next = peek(true).tok;
    if (next == Tok::end || next == Tok::comma) {
      r.op = not_exists ? "!" : "exists";
      return r;
    }
    Item op = take(false);
    switch (op.tok) {
      case Tok::in:
        r.op = "in";
        break;
      case Tok::not_in:
        r.op = "notin";
        break;
      case Tok::equals:
      case Tok::double_equals:
        r.op = "=";
        break;
      case Tok::not_equals:
        r.op = "!=";
        break;
      case Tok::greater:
        r.op = "gt";
        break;
      case Tok::less:
        r.op = "lt";
        break;
      default:
        *err = "found '" + op.lit + "', expected: in, notin, =, ==, !=, gt, lt";
        return std::nullopt;
    }
    if (r.op == "in" || r.op == "notin") {
      Item open = take(true);
      if (open.tok != Tok::open_par) {
        *err = "found '" + open.lit + "' expected: '('";
        return std::nullopt;
      }
      Item first_value = peek(true);
      if (first_value.tok == Tok::close_par) {
        take(true);
        r.values.push_back("");
      } else if (first_value.tok == Tok::identifier || first_value.tok == Tok::comma) {
        for (;;) {
          Item v = take(true);
          if (v.tok == Tok::identifier) {
            r.values.push_back(v.lit);
            Item sep = peek(true);
            if (sep.tok == Tok::comma) continue;
            if (sep.tok == Tok::close_par) break;
            *err = "found '" + sep.lit + "', expected: ',' or ')'";
            return std::nullopt;
          }
          if (v.tok == Tok::comma) {
            r.values.push_back("");
            if (peek(true).tok == Tok::close_par) break;
            continue;
          }
          *err = "found '" + v.lit + "', expected: ',', or identifier";
          return std::nullopt;
        }
        if (take(true).tok != Tok::close_par) {
          *err = "found '" + first_value.lit + "', expected: ')'";
          return std::nullopt;
        }
      } else {
        *err = "found '" + first_value.lit + "', expected: ',', ')' or identifier";
        return std::nullopt;
      }
    } else {
      Item v = peek(true);
      if (v.tok == Tok::end || v.tok == Tok::comma) {
        r.values.push_back("");
      } else if (take(true).tok == Tok::identifier) {
        r.values.push_back(v.lit);
      } else {
        *err = "found '" + v.lit + "', expected: identifier";
        return std::nullopt;
      }
    }
    for (const auto& v : r.values) {
      if (auto e = value_error(r.key, v); !e.empty()) {
        *err = e;
        return std::nullopt;
      }
    }
    if ((r.op == "gt" || r.op == "lt") &&
        (r.values.size() != 1 || r.values[0].empty() ||
         r.values[0].find_first_not_of("-0123456789") != std::string::npos)) {
      *err = "values[0]: Invalid value: \"" + r.values[0] +
             "\": for 'Gt', 'Lt' operators, the value must be an integer";
      return std::nullopt;
    }
    return r;
  };
  for (;;) {
    Item i = peek(true);
    if (i.tok == Tok::end) break;
    if (i.tok != Tok::identifier && i.tok != Tok::not_exists) {
      *error = "found '" + i.lit + "', expected: !, identifier, or 'end of string'";
      return std::nullopt;
    }
    std::string err;
    auto r = requirement(&err);
    if (!r) {
      *error = "unable to parse requirement: " + err;
      return std::nullopt;
    }
    selector.requirements_.push_back(std::move(*r));
    Item sep = take(true);
    if (sep.tok == Tok::end) break;
    if (sep.tok != Tok::comma) {
      *error = "found '" + sep.lit + "', expected: ',' or 'end of string'";
      return std::nullopt;
    }
    Item after = peek(true);
    if (after.tok != Tok::identifier && after.tok != Tok::not_exists) {
      *error = "found '" + after.lit + "', expected: identifier after ','";
      return std::nullopt;
    }
  }
  return selector;
}

bool Selector::matches(const Labels& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool in_values =
        has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    bool ok = true;
    if (r.op == "=" || r.op == "in") ok = in_values;
    if (r.op == "!=" || r.op == "notin") ok = !in_values;
    if (r.op == "exists") ok = has;
    if (r.op == "!") ok = !has;
    if (r.op == "gt" || r.op == "lt") {
      ok = false;
      if (has) {
        try {
          std::size_t used = 0;
          long long v = std::stoll(it->second, &used);
          long long want = std::stoll(r.values[0]);
          ok = used == it->second.size() && (r.op == "gt" ? v > want : v < want);
        } catch (const std::exception&) {
          ok = false;
        }
      }
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace envd::test::kube
