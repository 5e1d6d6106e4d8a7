/// Everything a node is configured with: which transports and overlords run (by name, with their settings),
/// where to bootstrap, and the protocol timers. Built in code (the simulator) or parsed from a YAML file
/// (`NodeConfig(yaml:)`, see docs/config.md).
public struct NodeConfig: Sendable {
    /// A plugin selected by name, with its settings.
    public struct PluginEntry: Sendable {
        public var name: String
        public var settings: PluginSettings
        /// Where the entry is written when it came from a config file; nil when built in code. Errors found
        /// after parsing (an unregistered name, settings the plugin cannot decode) point there.
        public var origin: Origin?

        public init(name: String, settings: PluginSettings = .empty) {
            self.name = name
            self.settings = settings
        }

        public init(name: String, settings: PluginSettings, origin: Origin?) {
            self.name = name
            self.settings = settings
            self.origin = origin
        }

        /// The place in a config file an entry was read from.
        public struct Origin: Sendable, Equatable {
            /// The file as named to the parser.
            public var file: String
            /// The entry's dotted path, e.g. `overlords[1]`.
            public var key: String
            /// Where the entry starts.
            public var entry: ConfigError.Position
            /// Where its name (`scheme` or `name`) is written.
            public var name: ConfigError.Position
            /// Where its `settings` mapping starts; nil when the entry gives none.
            public var settings: ConfigError.Position?

            public init(file: String, key: String, entry: ConfigError.Position, name: ConfigError.Position,
                        settings: ConfigError.Position?) {
                self.file = file
                self.key = key
                self.entry = entry
                self.name = name
                self.settings = settings
            }
        }
    }

    /// The link handshake's timers.
    public struct Linking: Sendable, Equatable {
        /// How long to wait for a link reply before retrying.
        public var replyTimeout: Duration = .milliseconds(1000)
        /// Tries per URI before moving to the next one.
        public var attemptsPerURI: Int = 3
        /// The wait before a retry doubles each time from this.
        public var retryBackoff: Duration = .milliseconds(250)
        /// In an attempt's first round, how long a try that sends at once has before the next URI starts beside
        /// it (happy eyeballs; RFC 8305's connection attempt delay). 0 tries one URI at a time.
        public var raceDelay: Duration = .milliseconds(250)
        /// How long an attempt tries a peer's direct URIs alone before its relay URIs start beside them: a
        /// pair that no direct path joins (a firewall that lets only TCP 443 out facing a NAT, a symmetric NAT)
        /// gets a relayed connection after this, not after every direct try timed out, and moves to a direct
        /// edge when one answers later. 1.5 s leaves a pair that can punch time to link directly first (2 s put
        /// join→routable p99 over 3 s at 1,000 NATed nodes). 0 tries relay URIs only in their turn.
        public var relayAfter: Duration = .milliseconds(1500)
        /// How often a relayed (tunnelled) connection tries the peer's direct URIs again.
        public var directRetryInterval: Duration = .seconds(30)
        /// The IP TTL of hole-punch packets (`HolePunchingEdge`): they must pass every NAT in front of the node
        /// (2 for one NAT, 3 behind a home NAT and a carrier-grade NAT) and die before the peer's. 0 turns hole
        /// punching off, and with it the wait for the peer.
        public var punchTTL: UInt8 = 2
        /// The longest a Connect-To-Me attempt that punched holds back its first link request, waiting for the
        /// peer to punch too (see `Linker`). 0 sends at once.
        public var punchHold: Duration = .milliseconds(500)
        public init() {}
    }

    /// Liveness: when idle connections are pinged and when silent ones are declared dead.
    public struct Liveness: Sendable, Equatable {
        /// A connection silent this long gets a ping.
        public var pingInterval: Duration = .seconds(15)
        /// A connection silent this long is closed as dead and its place repaired.
        public var deadAfter: Duration = .seconds(30)
        /// A connection whose edge carried sends but brought nothing back for this long moves to another path
        /// (`PathWatch`); `.zero` turns that off.
        public var failoverAfter: Duration = .seconds(1)
        public init() {}
    }

    /// Whether and how the node proves its membership and secures its edges (docs/security.md).
    public enum Security: Sendable {
        /// The config says nothing: the node runs without security. `wow run` refuses such a file, so an
        /// operator never runs an open node by forgetting a section; code (tests, simulations) may.
        case unspecified
        /// Explicitly without security (`security: { insecure: true }`): plaintext edges, no membership
        /// check; such a node cannot link with secured ones.
        case insecure
        /// Membership certificates and secure sessions on every edge.
        case secured(Secured)

        public var credentials: NodeCredentials? {
            if case .secured(let secured) = self { return secured.credentials }
            return nil
        }
    }

    /// A secured node's credentials and session limits.
    public struct Secured: Sendable {
        public var credentials: NodeCredentials
        public var channel = SecureChannel.Settings()
        /// The revocation list file (`security.revoked`), reread by the runtime as it changes; nil: none.
        public var revocationFile: String?

        public init(credentials: NodeCredentials, revocationFile: String? = nil) {
            self.credentials = credentials
            self.revocationFile = revocationFile
        }
    }

    /// A human-readable node name (logs, status).
    public var name: String
    /// The ring address; when nil the node derives it (from its certificate when secured: the hash of its
    /// virtual IP or key; else the hash of its name).
    public var address: Address?
    public var transports: [PluginEntry]
    public var overlords: [PluginEntry]
    public var bootstrap: [TransportURI]
    /// The handshake keys of bootstrap nodes, by URI (config: a `bootstrap` entry `{uri, handshake_key}`): the
    /// first init over such a URI carries the link request (and the joiner's Connect-To-Me), one round trip
    /// sooner. A wrong key costs that round trip back, nothing else.
    public var bootstrapHandshakeKeys: [TransportURI: [UInt8]] = [:]
    public var linking = Linking()
    public var liveness = Liveness()
    /// The most connections the node holds; link requests beyond it are refused with `tableFull`.
    public var maximumConnections = 256
    /// How many nearest neighbours per side the node shares in link replies and status messages.
    public var sharedNeighboursPerSide = 3
    public var security: Security = .unspecified
    /// The TUN device and the virtual network it carries; nil: the node only routes (no device).
    public var virtualNetwork: VirtualNetwork.Settings?

    public init(name: String, address: Address? = nil, transports: [PluginEntry], overlords: [PluginEntry],
                bootstrap: [TransportURI]) {
        self.name = name
        self.address = address
        self.transports = transports
        self.overlords = overlords
        self.bootstrap = bootstrap
    }

    /// The address the node sits at: the configured one, else the one its certificate entitles it to, else
    /// the hash of its name (without security).
    public var resolvedAddress: Address {
        address ?? security.credentials?.address ?? Address.hashing("wow-node:" + name)
    }
}
