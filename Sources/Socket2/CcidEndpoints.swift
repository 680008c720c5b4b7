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

    /// The identifiers `endpoints`.
    public init(endpoints: [UInt8]) { self.endpoints = endpoints }

    /// The position of the first identifier (0).
    public var startIndex: Int { endpoints.startIndex }
    /// The position after the last identifier.
    public var endIndex: Int { endpoints.endIndex }
    /// The identifier at `position`.
    public subscript(position: Int) -> UInt8 { endpoints[position] }
}
