// `Errno`, swift-system's error type, is what every call of this module throws (typed throws):
// it comes with `import Socket2`, so that `throws(Errno)` and `catch .wouldBlock` need no
// `import SystemPackage`. A file that imports SystemPackage too names the same type, so the two
// imports never make `Errno` ambiguous.
@_exported import struct SystemPackage.Errno
