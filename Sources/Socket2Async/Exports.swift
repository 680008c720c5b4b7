// `Errno`, swift-system's error type, which the reactor's operations throw beside
// `CancellationError` and `ReactorError`, comes with `import Socket2Async` as with `import
// Socket2`: catching it needs no `import SystemPackage` (which, imported too, names the same type).
@_exported import struct SystemPackage.Errno
