#!/usr/bin/env python3
"""Checks, from the symbol graph of module Socket2, that every socket2 0.6.4 Linux item
(socket2-api.md §3 and §4.1–4.19, listed in scripts/socket2-items.txt) exists under its Swift
name by the naming rule of DESIGN.md, and that every public symbol has a doc comment.

Usage:
    scripts/api-coverage.py [--package-path DIR] [--scratch-path DIR]
                            [--symbol-graph FILE_OR_DIR] [--items FILE]
                            [--skip-docs] [--verbose]

Without --symbol-graph it builds module Socket2 alone (`swift build --target Socket2`) and
extracts its symbol graph (`swift symbolgraph-extract` with the flags SwiftPM compiled Socket2
with; if those cannot be found, `swift package dump-symbol-graph`, which builds every target).

Members of `extension SocketHandle` count for `Socket` (which conforms); an instance method of
socket2's `Socket` must also be reachable from `SockRef` (socket2's SockRef derefs to Socket).

Prints, by section: the items missing, those on Socket but not on SockRef, the items not
applicable in Swift (with the reason), the §10 "beyond socket2" items (informational), the
public symbols without a doc comment, those whose only doc comment is inherited,
(informational) SocketHandle methods whose comment names no C constant or manual page, and the
options and control messages whose doc comments do not name each other (ControlMessage's naming
rule: the option keeps socket2's name, the message is named in whole words).
With --verbose, every item and where it was found.

Exit status: 0 when nothing of §3–4 is missing, every public symbol is documented (by its own
comment or, for protocol requirements such as `==` and `description`, by inheritance) and every
option and its control message name each other;
1 when something is missing or undocumented; 2 when the item list or the tools fail.
Stdlib only.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict

SECTION_TITLES = {
    "3": "§3 Public types (and their trait impls)",
    "4.1": "§4.1 Domain",
    "4.2": "§4.2 Type → SocketType",
    "4.3": "§4.3 Protocol → SocketProtocol",
    "4.4": "§4.4 RecvFlags",
    "4.5": "§4.5 MaybeUninitSlice",
    "4.6": "§4.6 TcpKeepalive",
    "4.7": "§4.7 MsgHdr / MsgHdrMut",
    "4.8": "§4.8 SockAddrStorage",
    "4.9": "§4.9 SockAddr",
    "4.10": "§4.10 SockRef",
    "4.11": "§4.11 Socket: construction, lifecycle, descriptor flags",
    "4.12": "§4.12 Socket: bind / listen / connect / accept / addresses",
    "4.13": "§4.13 Socket: send / recv families",
    "4.14": "§4.14 SOL_SOCKET options",
    "4.15": "§4.15 IPPROTO_IP options",
    "4.16": "§4.16 IPPROTO_IPV6 options",
    "4.17": "§4.17 IPPROTO_TCP options",
    "4.18": "§4.18 SOL_DCCP options",
    "4.19": "§4.19 Trait impls and conversions",
    "10": "§10 Beyond socket2 (informational)",
}

TYPE_RENAMES = {"Type": "SocketType", "Protocol": "SocketProtocol"}
TYPE_KINDS = {"swift.struct", "swift.enum", "swift.class", "swift.protocol", "swift.typealias"}
INSTANCE_KINDS = {"swift.method", "swift.property", "swift.subscript"}
# A doc comment "names its system call or option": an upper-case C constant (SO_REUSEADDR,
# MSG_PEEK, AF_INET), a manual-page reference (accept4(2), getaddrinfo(3)) or a call with its
# request (ioctl(FIONREAD)).
NAMES_SYSCALL = re.compile(
    r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[a-z_0-9]+\([23]\)|\b[a-z_0-9]+\([A-Z][A-Z0-9_]*\)")


# ---------------------------------------------------------------------------------------------
# The item list


class Item:
    def __init__(self, line_no, section, socket2, swift, note):
        self.line_no = line_no
        self.section = section
        self.socket2 = socket2
        self.swift = swift
        self.note = note

    @property
    def informational(self):
        return self.section == "10"

    @property
    def not_applicable(self):
        return self.swift == "-"


def lower_camel(snake):
    """`set_reuse_address` → `setReuseAddress`, `join_multicast_v4_n` → `joinMulticastV4N`."""
    parts = [p for p in snake.split("_") if p]
    if not parts:
        return snake
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def rule_name(socket2):
    """The Swift name the naming rule gives a socket2 item, or None when the rule says nothing
    (trait impls, conversions)."""
    if "::" in socket2:
        owner, name = socket2.split("::", 1)
        owner = TYPE_RENAMES.get(owner, owner)
        if name == "new":
            member = "init"
        elif name.startswith("r#"):
            member = name[2:]
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*", name):  # an associated constant: IPV4 → ipv4
            member = name.lower()
        elif re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):  # an enum variant: Index → index
            member = name[:1].lower() + name[1:]
        else:
            member = lower_camel(name)
        return f"{owner}.{member}"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", socket2):
        return TYPE_RENAMES.get(socket2, socket2)
    return None


def base_of(swift_member):
    return swift_member.split("(", 1)[0]


def read_items(path):
    items, problems = [], []
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            comment = re.search(r"\s#", line)  # `#` after a blank: `r#type` is no comment
            body, note = (line[:comment.start()], line[comment.end():]) if comment else (line, "")
            fields = body.split()
            if len(fields) != 3:
                problems.append(f"{path}:{no}: expected <section> <socket2 item> <Swift name>: {line!r}")
                continue
            section, socket2, swift = fields
            if section not in SECTION_TITLES:
                problems.append(f"{path}:{no}: unknown section {section!r}")
                continue
            item = Item(no, section, socket2, swift, note.strip())
            expected = rule_name(socket2)
            if (expected is not None and not item.not_applicable and not item.informational
                    and base_of(swift) != expected and not item.note.startswith("rule:")):
                problems.append(f"{path}:{no}: {socket2} → {swift} deviates from the naming rule "
                                f"({expected}); mark the line `# rule: why` if deliberate")
            if item.not_applicable and not item.note:
                problems.append(f"{path}:{no}: {socket2} is marked not applicable without a reason")
            items.append(item)
    return items, problems


# ---------------------------------------------------------------------------------------------
# The symbol graph


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        sys.exit(f"api-coverage: `{' '.join(cmd)}` failed with status {proc.returncode}")
    return proc.stdout


def extract_symbol_graph(package_path, scratch_path):
    """Builds module Socket2 only, then runs `swift symbolgraph-extract` on it with the search
    paths and module maps of its own compile command (read from the build's `debug.yaml`).
    Falls back to `swift package dump-symbol-graph` (which builds every target) when the compile
    command cannot be found."""
    extra = ["--scratch-path", scratch_path] if scratch_path else []
    run(["swift", "build", *extra, "--target", "Socket2"], package_path)
    bin_path = run(["swift", "build", *extra, "--show-bin-path"], package_path).strip().splitlines()[-1]
    flags = socket2_compile_flags(bin_path)
    if flags is None:
        out = run(["swift", "package", *extra, "dump-symbol-graph",
                   "--minimum-access-level", "public"], package_path)
        match = re.search(r"Files written to (.+)", out)
        if not match:
            sys.exit("api-coverage: could not find where dump-symbol-graph wrote its files:\n" + out)
        return match.group(1).strip()
    output = os.path.join(bin_path, "api-coverage-symbolgraph")
    os.makedirs(output, exist_ok=True)
    for f in os.listdir(output):
        os.remove(os.path.join(output, f))
    run(["swift", "symbolgraph-extract", "-module-name", "Socket2",
         "-minimum-access-level", "public", "-output-dir", output, *flags], package_path)
    return output


def socket2_compile_flags(bin_path):
    """The -I / -Xcc / -target / -module-cache-path flags SwiftPM compiled Socket2 with."""
    config = os.path.basename(bin_path)
    yaml = os.path.join(os.path.dirname(os.path.dirname(bin_path)), f"{config}.yaml")
    try:
        with open(yaml, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    start = re.search(r'^  "C\.Socket2-[^"]*\.module":$', text, re.M)
    if not start:
        return None
    match = re.search(r"^\s*args: (\[.*\])$", text[start.end():], re.M)
    if not match:
        return None
    args = json.loads(match.group(1))
    flags, k = [], 0
    with_value = {"-I", "-Xcc", "-target", "-sdk", "-F", "-module-cache-path"}
    while k < len(args):
        if args[k] in with_value and k + 1 < len(args):
            flags += args[k:k + 2]
            k += 2
        else:
            k += 1
    return flags


def graph_files(path):
    """Socket2.symbols.json and Socket2@Other.symbols.json (extensions of other modules' types)."""
    if os.path.isfile(path):
        return [path]
    files = [os.path.join(path, f) for f in sorted(os.listdir(path))
             if f == "Socket2.symbols.json" or f.startswith("Socket2@")]
    if not files:
        sys.exit(f"api-coverage: no Socket2 symbol graph in {path}")
    return files


class Graph:
    def __init__(self, files):
        self.symbols = {}  # precise id → symbol
        self.relationships = []
        for path in files:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            for s in data["symbols"]:
                self.symbols[s["identifier"]["precise"]] = s
            self.relationships.extend(data["relationships"])

        self.by_path = {}  # "Socket2 path" → symbol, e.g. "SocketHandle"
        self.members = defaultdict(list)  # container path → [symbol]
        self.types = {}
        for s in self.symbols.values():
            pc = s["pathComponents"]
            if len(pc) == 1 and s["kind"]["identifier"] in TYPE_KINDS:
                self.types[pc[0]] = s
            if len(pc) >= 2:
                self.members[".".join(pc[:-1])].append(s)

        self.conformances = defaultdict(set)  # type path → {protocol names}
        for r in self.relationships:
            if r["kind"] != "conformsTo" or r["source"] not in self.symbols:
                continue
            source = ".".join(self.symbols[r["source"]]["pathComponents"])
            target = self.symbols.get(r["target"])
            name = (target["pathComponents"][-1] if target
                    else r.get("targetFallback", r["target"]).split(".")[-1])
            self.conformances[source].add(name)

    def containers(self, owner):
        """`owner` itself, then the protocols of this module it conforms to (whose extension
        members every conforming type has)."""
        result = [owner]
        for proto in sorted(self.conformances.get(owner, ())):
            t = self.types.get(proto)
            if t and t["kind"]["identifier"] == "swift.protocol":
                result.append(proto)
        return result

    def find_member(self, owner, member):
        """Symbols matching `member` (base name, or full title when it has labels) on `owner`
        or its protocols; returns [(container, symbol)]."""
        found = []
        exact = "(" in member
        for container in self.containers(owner):
            for s in self.members.get(container, ()):
                if "::SYNTHESIZED::" in s["identifier"]["precise"]:
                    continue
                title = s["pathComponents"][-1]
                if (title == member) if exact else (base_of(title) == member):
                    found.append((container, s))
        return found

    def find_anywhere(self, name):
        if name in self.types:
            return [("", self.types[name])]
        return [(c, s) for c, ss in self.members.items() for s in ss
                if base_of(s["pathComponents"][-1]) == name
                and "::SYNTHESIZED::" not in s["identifier"]["precise"]]


def file_of(symbol):
    uri = (symbol.get("location") or {}).get("uri", "")
    return os.path.basename(uri)


def line_of(symbol):
    loc = symbol.get("location") or {}
    return f"{file_of(symbol)}:{loc.get('position', {}).get('line', -1) + 1}"


def resolve(graph, spec):
    """Where `spec` is found: a non-empty list of descriptions, or [] when missing."""
    hits = []
    for alt in spec.split("|"):
        if ":" in alt and "." not in alt.split(":", 1)[0] and not alt.endswith(":)"):
            owner, proto = alt.split(":", 1)
            if owner in graph.types and proto in graph.conformances.get(owner, ()):
                hits.append(f"{owner}: {proto}")
        elif "." in base_of(alt):
            owner, member = alt.split(".", 1)
            for container, s in graph.find_member(owner, member):
                hits.append(f"{container}.{s['pathComponents'][-1]} [{file_of(s)}]")
        else:
            for container, s in graph.find_anywhere(alt):
                where = f"{container}." if container else ""
                hits.append(f"{where}{s['pathComponents'][-1]} [{file_of(s)}]")
        if hits:
            break
    return hits


def sockref_gap(graph, item):
    """A `Socket::` instance method socket2's SockRef reaches through Deref but ours does not."""
    if not item.socket2.startswith("Socket::") or not item.swift.startswith("Socket."):
        return False
    member = item.swift.split(".", 1)[1]
    on_socket = graph.find_member("Socket", member)
    if not on_socket or not all(s["kind"]["identifier"] in INSTANCE_KINDS for _, s in on_socket):
        return False
    return not graph.find_member("SockRef", member)


# ---------------------------------------------------------------------------------------------
# Doc comments


def doc_report(graph):
    undocumented, inherited, unnamed = [], [], []
    for s in graph.symbols.values():
        if "::SYNTHESIZED::" in s["identifier"]["precise"]:
            continue
        name = ".".join(s["pathComponents"])
        doc = s.get("docComment")
        own = doc is not None and doc.get("module", "Socket2") == "Socket2" and "uri" in doc
        if doc is None:
            undocumented.append((name, s))
        elif not own:
            inherited.append((name, s, doc.get("module", "?")))
        elif (s["pathComponents"][0] == "SocketHandle" and len(s["pathComponents"]) == 2
              and s["kind"]["identifier"] == "swift.method"):
            text = " ".join(l["text"] for l in doc["lines"])
            if not NAMES_SYSCALL.search(text):
                unnamed.append((name, s))
    key = lambda t: t[0]
    return sorted(undocumented, key=key), sorted(inherited, key=key), sorted(unnamed, key=key)


# The naming rule of control messages (ControlMessage's "Names"): the options keep socket2's
# rule, the messages are named in whole words, and each names its twin in its doc comment.
# (option on SocketHandle, control-message case)
CONTROL_MESSAGE_TWINS = [
    ("setTimestamp", "ReceivedControlMessage.timestamp"),
    ("setTimestampns", "ReceivedControlMessage.timestampNs"),
    ("setTimestamping", "ReceivedControlMessage.timestamping"),
    ("setRecvPktinfoV4", "ReceivedControlMessage.packetInfoV4"),
    ("setRecvPktinfoV6", "ReceivedControlMessage.packetInfoV6"),
    ("setRecvTosV4", "ReceivedControlMessage.tosV4"),
    ("setRecvTclassV6", "ReceivedControlMessage.trafficClassV6"),
    ("setRecvTtlV4", "ReceivedControlMessage.ttlV4"),
    ("setRecvHoplimitV6", "ReceivedControlMessage.hopLimitV6"),
    ("setUdpGro", "ReceivedControlMessage.udpGroSegmentSize"),
    ("setPasscred", "ReceivedControlMessage.credentials"),
    ("setRecvErrV4", "ReceivedControlMessage.extendedError"),
    ("setRecvErrV6", "ReceivedControlMessage.extendedError"),
    ("setZerocopy", "ReceivedControlMessage.zeroCopy"),
    ("setTtlV4", "ControlMessage.ttlV4"),
    ("setTosV4", "ControlMessage.tosV4"),
    ("setTclassV6", "ControlMessage.trafficClassV6"),
    ("setUnicastHopsV6", "ControlMessage.hopLimitV6"),
    ("setUdpSegment", "ControlMessage.udpSegment"),
]


def doc_text(symbol):
    doc = symbol.get("docComment") or {}
    return " ".join(l["text"] for l in doc.get("lines", []))


def control_message_twin_report(graph):
    """The pairs of CONTROL_MESSAGE_TWINS whose option or message is missing, or whose doc
    comment does not name the other."""
    problems = []
    for option, case in CONTROL_MESSAGE_TWINS:
        owner, member = case.split(".")
        options = graph.find_member("SocketHandle", option)
        cases = graph.find_member(owner, member)
        if not options or not cases:
            problems.append(f"{option} ↔ {case}: {'option' if not options else 'case'} not found")
            continue
        if not re.search(rf"\b{member}\(", doc_text(options[0][1])):
            problems.append(f"{option}'s doc comment does not name {case}")
        if not re.search(rf"\b{option}\(", doc_text(cases[0][1])):
            problems.append(f"{case}'s doc comment does not name {option}")
    return problems


# ---------------------------------------------------------------------------------------------


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package-path", default=os.path.dirname(here),
                        help="the package (default: the parent of scripts/)")
    parser.add_argument("--scratch-path", help="passed to swift build / swift package")
    parser.add_argument("--symbol-graph", help="an existing Socket2.symbols.json, or its directory "
                        "(skips building)")
    parser.add_argument("--items", default=os.path.join(here, "socket2-items.txt"))
    parser.add_argument("--skip-docs", action="store_true", help="do not check doc comments")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print where each item was found")
    args = parser.parse_args()

    items, problems = read_items(args.items)
    if problems:
        print("The item list is inconsistent:")
        for p in problems:
            print("  " + p)
        return 2

    graph_path = args.symbol_graph or extract_symbol_graph(args.package_path, args.scratch_path)
    graph = Graph(graph_files(graph_path))

    missing = defaultdict(list)
    gaps = []
    not_applicable = []
    beyond_missing = []
    found_count = counted = 0
    for item in items:
        if item.not_applicable:
            not_applicable.append(item)
            continue
        hits = resolve(graph, item.swift)
        if item.informational:
            if not hits:
                beyond_missing.append(item)
        else:
            counted += 1
            if hits:
                found_count += 1
                if sockref_gap(graph, item):
                    gaps.append(item)
            else:
                missing[item.section].append(item)
        if args.verbose:
            print(f"{'ok  ' if hits else 'MISS'} §{item.section:<5} {item.socket2:<40} "
                  f"{item.swift:<38} {hits[0] if hits else ''}")

    print(f"socket2 0.6.4 Linux items (§3, §4.1–4.19): {counted} checked, {found_count} found, "
          f"{counted - found_count} missing; {len(not_applicable)} not applicable in Swift.")
    if missing:
        print("\nMISSING (by its Swift rule name):")
        for section in SECTION_TITLES:
            if section in missing:
                print(f"  {SECTION_TITLES[section]}")
                for item in missing[section]:
                    note = f"   ({item.note})" if item.note else ""
                    print(f"    {item.socket2:<40} → {item.swift}{note}")
    if gaps:
        print("\nON Socket BUT NOT ON SockRef (socket2's SockRef derefs to Socket):")
        for item in gaps:
            print(f"    {item.socket2:<40} → {item.swift}")
    if not_applicable:
        print("\nNot applicable in Swift (not counted):")
        for item in not_applicable:
            print(f"    §{item.section:<5} {item.socket2:<36} {item.note}")

    beyond = [i for i in items if i.informational]
    print(f"\n{SECTION_TITLES['10']}: {len(beyond) - len(beyond_missing)} of {len(beyond)} present.")
    for item in beyond_missing:
        print(f"    not found: {item.socket2:<28} → {item.swift}")

    undocumented = []
    if not args.skip_docs:
        undocumented, inherited, unnamed = doc_report(graph)
        total = sum(1 for s in graph.symbols.values()
                    if "::SYNTHESIZED::" not in s["identifier"]["precise"])
        print(f"\nDoc comments: {total} public symbols; {len(undocumented)} without any doc comment, "
              f"{len(inherited)} documented only by an inherited comment.")
        for name, s in undocumented:
            print(f"    UNDOCUMENTED  {name:<48} {line_of(s)}")
        for name, s, module in inherited:
            print(f"    inherited ({module})  {name:<44} {line_of(s)}")
        if unnamed:
            print(f"  Informational: {len(unnamed)} SocketHandle methods whose doc comment names "
                  "no C constant or manual page:")
            for name, s in unnamed:
                print(f"    {name:<52} {line_of(s)}")

    twins = [] if args.skip_docs else control_message_twin_report(graph)
    if not args.skip_docs:
        print(f"\nControl-message names: {len(CONTROL_MESSAGE_TWINS)} option/message pairs, "
              f"{len(twins)} not naming each other.")
        for problem in twins:
            print(f"    {problem}")

    return 1 if (missing or gaps or undocumented or twins) else 0


if __name__ == "__main__":
    sys.exit(main())
