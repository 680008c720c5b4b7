/// The congestion control identifiers (CCIDs) a DCCP socket may use, as
/// ``SocketHandle/dccpAvailableCcids(capacity:)`` (`DCCP_SOCKOPT_AVAILABLE_CCIDS`) reads them.
///
/// A collection of the identifiers, in the kernel's order (socket2's `CcidEndpoints<N>`, whose
/// fixed capacity is here a parameter of the getter).
public struct CcidEndpoints: RandomAccessCollection, Hashable, Sendable {
    /// The identifiers the kernel reported.
    public let endpoints: [UInt8]

    /// How many identifiers the kernel reported.
    public var length: Int { endpoints.count }

    public init(endpoints: [UInt8]) { self.endpoints = endpoints }

    public var startIndex: Int { endpoints.startIndex }
    public var endIndex: Int { endpoints.endIndex }
    public subscript(position: Int) -> UInt8 { endpoints[position] }
}
