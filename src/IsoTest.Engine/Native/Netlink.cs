using System.Buffers.Binary;
using System.Net;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// A small rtnetlink client: the links, addresses and routes the engine's networks need, without the
/// <c>ip</c> command. A netlink socket acts on the network namespace it was opened in, for as long as
/// it lives, whichever thread later uses it: so the engine opens one per namespace it configures
/// (<see cref="OpenIn"/>) and never moves a thread of its own anywhere but for that instant.
/// Requests are serialised on the socket; each waits for the kernel's acknowledgement.
/// </summary>
internal sealed unsafe partial class Netlink : IDisposable
{
    private const int AF_NETLINK = 16;
    private const int SOCK_RAW = 3;
    private const int NETLINK_ROUTE = 0;
    private const int NETLINK_NETFILTER = 12;
    private const int CLONE_NEWNET = 0x40000000;

    private const ushort NLMSG_ERROR = 2;
    private const ushort NLMSG_DONE = 3;
    private const ushort NLM_F_REQUEST = 0x1;
    private const ushort NLM_F_ACK = 0x4;
    private const ushort NLM_F_DUMP = 0x300;
    private const ushort NLM_F_EXCL = 0x200;
    private const ushort NLM_F_CREATE = 0x400;

    private const ushort RTM_NEWLINK = 16;
    private const ushort RTM_DELLINK = 17;
    private const ushort RTM_GETLINK = 18;
    private const ushort RTM_NEWADDR = 20;
    private const ushort RTM_GETADDR = 22;
    private const ushort RTM_NEWROUTE = 24;
    private const ushort RTM_GETROUTE = 26;

    private const ushort IFLA_IFNAME = 3;
    private const ushort IFLA_MTU = 4;
    private const ushort IFLA_MASTER = 10;
    private const ushort IFLA_LINKINFO = 18;
    private const ushort IFLA_AF_SPEC = 26;
    private const ushort IFLA_NET_NS_FD = 28;
    private const ushort IFLA_INET_CONF = 1;
    private const ushort IPV4_DEVCONF_FORWARDING = 1;
    private const ushort IFLA_INFO_KIND = 1;
    private const ushort IFLA_INFO_DATA = 2;
    private const ushort VETH_INFO_PEER = 1;
    private const ushort IFA_ADDRESS = 1;
    private const ushort IFA_LOCAL = 2;
    private const ushort RTA_DST = 1;
    private const ushort RTA_GATEWAY = 5;
    private const ushort NLA_F_NESTED = 0x8000;
    private const uint IFF_UP = 0x1;
    private const byte RT_TABLE_MAIN = 254;
    private const byte RTPROT_BOOT = 3;
    private const byte RT_SCOPE_UNIVERSE = 0;
    private const byte RTN_UNICAST = 1;

    private readonly SafeFileHandle _socket;
    private readonly Lock _lock = new();
    private readonly byte[] _receive = new byte[64 * 1024];
    private uint _sequence;

    private Netlink(SafeFileHandle socket) => _socket = socket;

    /// <summary>Header sizes the messages are built from (checked against the C headers in tests).</summary>
    internal static class Sizes
    {
        public const int NlMsgHdr = 16;
        public const int NlMsgErr = 4 + NlMsgHdr;
        public const int IfInfoMsg = 16;
        public const int IfAddrMsg = 8;
        public const int RtMsg = 12;
        public const int RtAttr = 4;
        public const int NfGenMsg = 4;
    }

    /// <summary>A socket acting on the calling thread's network namespace.</summary>
    public static Netlink Open() => Open(NETLINK_ROUTE);

    /// <summary>A netfilter socket (nf_tables, <see cref="Masquerade"/>) acting on the calling thread's network namespace.</summary>
    public static Netlink OpenNetfilter() => Open(NETLINK_NETFILTER);

    private static Netlink Open(int protocol)
    {
        int fd = Libc.socket(AF_NETLINK, SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        return fd < 0 ? throw Errors.Native("socket(AF_NETLINK)", Libc.Errno) : new Netlink(new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>A netlink socket made elsewhere (in another namespace, by the rootless network holder); owned from now on.</summary>
    public static Netlink FromSocket(SafeFileHandle socket) => new(socket);

    /// <summary>A socket acting on the network namespace <paramref name="netns"/>, opened on a short-lived thread of its own.</summary>
    public static Netlink OpenIn(SafeFileHandle netns) => InNamespace(netns, Open);

    /// <summary>
    /// Runs <paramref name="make"/> (which makes a socket or a namespace-bound descriptor) on a thread
    /// that first joins <paramref name="netns"/>. The thread ends afterwards, so it never has to find its
    /// way back and no pooled thread is ever left in another namespace.
    /// </summary>
    public static T InNamespace<T>(SafeFileHandle netns, Func<T> make)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.setns((int)netns.DangerousGetHandle(), CLONE_NEWNET) != 0)
                {
                    throw Errors.Native("setns(network namespace)", Libc.Errno);
                }

                result = make();
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "isotest-netns-hop" };
        thread.Start();
        thread.Join();
        return failure is null ? result! : throw failure;
    }

    /// <summary>The index of the link named <paramref name="name"/>, or 0 when there is none.</summary>
    public int IndexOf(string name)
    {
        var m = new Message(RTM_GETLINK, NLM_F_REQUEST);
        m.IfInfo(0, 0, 0, 0);
        m.AttrString(IFLA_IFNAME, name);
        int index = 0;
        int error = Transact(m, (type, payload) =>
        {
            if (type == RTM_NEWLINK)
            {
                index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
            }
        });
        if (error == 19 /* ENODEV */)
        {
            return 0;
        }

        Check(error, $"RTM_GETLINK {name}");
        return index;
    }

    /// <summary>Creates a bridge (down); returns its index.</summary>
    public int CreateBridge(string name)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.IfInfo(0, 0, 0, 0);
        m.AttrString(IFLA_IFNAME, name);
        int info = m.Begin(IFLA_LINKINFO);
        m.AttrString(IFLA_INFO_KIND, "bridge");
        m.End(info);
        Check(Transact(m), $"RTM_NEWLINK bridge {name}");
        return IndexOf(name);
    }

    /// <summary>
    /// Creates a veth pair: <paramref name="name"/> here, <paramref name="peerName"/> in the network
    /// namespace <paramref name="peerNetns"/> (both down, both with <paramref name="mtu"/>). Returns the index of the end here.
    /// </summary>
    public int CreateVethPair(string name, string peerName, SafeFileHandle peerNetns, int mtu)
    {
        bool held = false;
        peerNetns.DangerousAddRef(ref held);
        try
        {
            var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
            m.IfInfo(0, 0, 0, 0);
            m.AttrString(IFLA_IFNAME, name);
            m.AttrU32(IFLA_MTU, (uint)mtu);
            int info = m.Begin(IFLA_LINKINFO);
            m.AttrString(IFLA_INFO_KIND, "veth");
            int data = m.Begin(IFLA_INFO_DATA);
            int peer = m.Begin(VETH_INFO_PEER);
            m.IfInfo(0, 0, 0, 0); // the peer's own ifinfomsg comes first inside VETH_INFO_PEER
            m.AttrString(IFLA_IFNAME, peerName);
            m.AttrU32(IFLA_MTU, (uint)mtu);
            m.AttrU32(IFLA_NET_NS_FD, (uint)peerNetns.DangerousGetHandle());
            m.End(peer);
            m.End(data);
            m.End(info);
            Check(Transact(m), $"RTM_NEWLINK veth {name}/{peerName}");
        }
        finally
        {
            if (held)
            {
                peerNetns.DangerousRelease();
            }
        }

        return IndexOf(name);
    }

    /// <summary>Enslaves a link to a bridge and brings it up.</summary>
    public void SetMasterAndUp(int index, int masterIndex)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(0, index, IFF_UP, IFF_UP);
        m.AttrU32(IFLA_MASTER, (uint)masterIndex);
        Check(Transact(m), $"RTM_NEWLINK master {masterIndex} of link {index}");
    }

    /// <summary>Brings a link up.</summary>
    public void SetUp(int index)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(0, index, IFF_UP, IFF_UP);
        Check(Transact(m), $"RTM_NEWLINK up link {index}");
    }

    /// <summary>
    /// Lets IPv4 packets that arrive on a link be routed on (its <c>forwarding</c>, which the kernel checks on the
    /// input link): set per link, so nothing changes for the namespace's other links or for any other namespace.
    /// </summary>
    public void SetForwarding(int index)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(0, index, 0, 0);
        int spec = m.Begin(IFLA_AF_SPEC);
        int inet = m.Begin(Libc.AF_INET);
        int conf = m.Begin(IFLA_INET_CONF);
        m.AttrU32(IPV4_DEVCONF_FORWARDING, 1);
        m.End(conf);
        m.End(inet);
        m.End(spec);
        Check(Transact(m), $"RTM_NEWLINK forwarding on link {index}");
    }

    /// <summary>Deletes a link (a veth takes its peer with it); true when it existed.</summary>
    public bool DeleteLink(int index)
    {
        var m = new Message(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.IfInfo(0, index, 0, 0);
        int error = Transact(m);
        if (error == 19 /* ENODEV */)
        {
            return false;
        }

        Check(error, $"RTM_DELLINK link {index}");
        return true;
    }

    /// <summary>Adds an IPv4 address with its prefix to a link (the kernel adds the subnet's route).</summary>
    public void AddAddress(int index, IPAddress address, int prefixLength)
    {
        var bytes = address.GetAddressBytes();
        var m = new Message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.IfAddr(Libc.AF_INET, (byte)prefixLength, index);
        m.AttrBytes(IFA_LOCAL, bytes);
        m.AttrBytes(IFA_ADDRESS, bytes);
        Check(Transact(m), $"RTM_NEWADDR {address}/{prefixLength} on link {index}");
    }

    /// <summary>Adds the default IPv4 route through <paramref name="gateway"/>.</summary>
    public void AddDefaultRoute(IPAddress gateway)
    {
        var m = new Message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.Rt(Libc.AF_INET, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST);
        m.AttrBytes(RTA_GATEWAY, gateway.GetAddressBytes());
        Check(Transact(m), $"RTM_NEWROUTE default via {gateway}");
    }

    /// <summary>The names of every link in this namespace.</summary>
    public List<string> LinkNames()
    {
        var names = new List<string>();
        var m = new Message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
        m.IfInfo(0, 0, 0, 0);
        Check(Transact(m, (type, payload) =>
        {
            var name = FindAttr(payload[Sizes.IfInfoMsg..], IFLA_IFNAME);
            if (type == RTM_NEWLINK && name.Length > 0)
            {
                names.Add(Encoding.ASCII.GetString(name).TrimEnd('\0'));
            }
        }), "RTM_GETLINK dump");
        return names;
    }

    /// <summary>Every IPv4 prefix this namespace routes or holds an address in (to pick subnets that collide with none).</summary>
    public List<(IPAddress Address, int PrefixLength)> IPv4Prefixes()
    {
        var result = new List<(IPAddress, int)>();
        var routes = new Message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
        routes.Rt(Libc.AF_INET, 0, 0, 0, 0, 0);
        Check(Transact(routes, (type, payload) =>
        {
            if (type != RTM_NEWROUTE)
            {
                return;
            }

            int prefix = payload[1];
            var destination = FindAttr(payload[Sizes.RtMsg..], RTA_DST);
            if (prefix > 0 && destination.Length == 4)
            {
                result.Add((new IPAddress(destination), prefix));
            }
        }), "RTM_GETROUTE dump");

        var addresses = new Message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        addresses.IfAddr(Libc.AF_INET, 0, 0);
        Check(Transact(addresses, (type, payload) =>
        {
            if (type != RTM_NEWADDR || payload[0] != Libc.AF_INET)
            {
                return;
            }

            var local = FindAttr(payload[Sizes.IfAddrMsg..], IFA_LOCAL);
            if (local.Length == 4)
            {
                result.Add((new IPAddress(local), payload[1]));
            }
        }), "RTM_GETADDR dump");
        return result;
    }

    public void Dispose() => _socket.Dispose();

    private static int Check(int error, string what) => error == 0 ? 0 : throw Errors.Native($"netlink {what}", error);

    private static ReadOnlySpan<byte> FindAttr(ReadOnlySpan<byte> attributes, ushort type)
    {
        while (attributes.Length >= Sizes.RtAttr)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort kind = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) & ~NLA_F_NESTED);
            if (length < Sizes.RtAttr || length > attributes.Length)
            {
                break;
            }

            if (kind == type)
            {
                return attributes[Sizes.RtAttr..length];
            }

            attributes = attributes[Math.Min(Align(length), attributes.Length)..];
        }

        return [];
    }

    private static int Align(int length) => (length + 3) & ~3;

    private delegate void OnMessage(ushort type, ReadOnlySpan<byte> payload);

    /// <summary>Sends one request; returns 0 or the kernel's errno. Dumps call <paramref name="onMessage"/> per reply.</summary>
    private int Transact(Message message, OnMessage? onMessage = null) => Transact([message], onMessage);

    /// <summary>
    /// Sends <paramref name="messages"/> in one write (an nf_tables batch is only taken whole) and waits for the reply
    /// to the last of them; returns 0 or the first errno the kernel answered any of them with.
    /// </summary>
    private int Transact(Message[] messages, OnMessage? onMessage = null)
    {
        lock (_lock)
        {
            uint first = _sequence + 1;
            var bytes = messages.SelectMany(m => m.Finish(++_sequence)).ToArray();
            // What is answered last: the last message asking for an acknowledgement (a batch's end asks none), else the last one.
            int answered = Array.FindLastIndex(messages, m => (m.Flags & NLM_F_ACK) != 0);
            uint sequence = first + (uint)(answered < 0 ? messages.Length - 1 : answered);
            bool held = false;
            _socket.DangerousAddRef(ref held);
            try
            {
                int fd = (int)_socket.DangerousGetHandle();
                fixed (byte* p = bytes)
                {
                    if (Libc.write(fd, p, (nuint)bytes.Length) < 0)
                    {
                        throw Errors.Native("netlink send", Libc.Errno);
                    }
                }

                while (true)
                {
                    nint n;
                    fixed (byte* p = _receive)
                    {
                        n = Libc.read(fd, p, (nuint)_receive.Length);
                    }

                    if (n < 0)
                    {
                        if (Libc.Errno == Libc.EINTR)
                        {
                            continue;
                        }

                        throw Errors.Native("netlink receive", Libc.Errno);
                    }

                    var span = _receive.AsSpan(0, (int)n);
                    while (span.Length >= Sizes.NlMsgHdr)
                    {
                        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
                        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
                        uint seq = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
                        if (length < Sizes.NlMsgHdr || length > span.Length)
                        {
                            throw new InvalidOperationException("netlink: a truncated reply");
                        }

                        var payload = span[Sizes.NlMsgHdr..length];
                        span = span[Math.Min(Align(length), span.Length)..];
                        if (seq < first || seq > sequence)
                        {
                            continue; // a late reply to an earlier request that gave up
                        }

                        if (type == NLMSG_ERROR)
                        {
                            // An acknowledgement is an error message with error 0; a failed request carries -errno.
                            // A batch stops at its first failure: what follows is not acted on.
                            int error = -BinaryPrimitives.ReadInt32LittleEndian(payload);
                            if (error != 0 || seq == sequence)
                            {
                                return error;
                            }

                            continue;
                        }

                        if (type == NLMSG_DONE)
                        {
                            return 0;
                        }

                        onMessage?.Invoke(type, payload);
                        if (onMessage is not null && messages[^1].Flags == NLM_F_REQUEST)
                        {
                            return 0; // a single GET without ACK answers with exactly one message
                        }
                    }
                }
            }
            finally
            {
                if (held)
                {
                    _socket.DangerousRelease();
                }
            }
        }
    }

    /// <summary>A request being built: header, fixed part, then attributes (nested ones closed with <see cref="End"/>).</summary>
    private sealed class Message
    {
        private readonly List<byte> _bytes = new(128);

        public Message(ushort type, ushort flags)
        {
            Flags = flags;
            Span<byte> header = stackalloc byte[Sizes.NlMsgHdr];
            header.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
            _bytes.AddRange(header.ToArray());
        }

        public ushort Flags { get; }

        /// <summary>struct ifinfomsg { u8 family, pad; u16 type; i32 index; u32 flags, change; }</summary>
        public void IfInfo(byte family, int index, uint flags, uint change)
        {
            var b = new byte[Sizes.IfInfoMsg];
            b[0] = family;
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), index);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), change);
            _bytes.AddRange(b);
        }

        /// <summary>struct nfgenmsg { u8 family, version; be16 res_id; } (netfilter messages)</summary>
        public void NfGen(byte family, ushort resourceId)
        {
            var b = new byte[Sizes.NfGenMsg];
            b[0] = family;
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), resourceId);
            _bytes.AddRange(b);
        }

        /// <summary>A 32-bit attribute in network byte order (nf_tables numbers are big-endian).</summary>
        public void AttrBe32(ushort type, uint value)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b, value);
            AttrBytes(type, b);
        }

        /// <summary>struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index; }</summary>
        public void IfAddr(int family, byte prefixLength, int index)
        {
            var b = new byte[Sizes.IfAddrMsg];
            b[0] = (byte)family;
            b[1] = prefixLength;
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), index);
            _bytes.AddRange(b);
        }

        /// <summary>struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }</summary>
        public void Rt(int family, byte destinationLength, byte table, byte protocol, byte scope, byte type)
        {
            var b = new byte[Sizes.RtMsg];
            b[0] = (byte)family;
            b[1] = destinationLength;
            b[4] = table;
            b[5] = protocol;
            b[6] = scope;
            b[7] = type;
            _bytes.AddRange(b);
        }

        public void AttrString(ushort type, string value)
        {
            var bytes = Encoding.ASCII.GetBytes(value + "\0");
            AttrBytes(type, bytes);
        }

        public void AttrU32(ushort type, uint value)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            AttrBytes(type, b);
        }

        public void AttrBytes(ushort type, ReadOnlySpan<byte> value)
        {
            int start = Begin(type);
            _bytes.AddRange(value.ToArray());
            End(start);
        }

        /// <summary>Opens an attribute whose length is set by <see cref="End"/> (nested attributes go between).</summary>
        public int Begin(ushort type)
        {
            int start = _bytes.Count;
            _bytes.AddRange([0, 0, (byte)type, (byte)(type >> 8)]);
            return start;
        }

        public void End(int start)
        {
            int length = _bytes.Count - start;
            _bytes[start] = (byte)length;
            _bytes[start + 1] = (byte)(length >> 8);
            while (_bytes.Count % 4 != 0)
            {
                _bytes.Add(0);
            }
        }

        public byte[] Finish(uint sequence)
        {
            var bytes = _bytes.ToArray();
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)bytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), sequence);
            return bytes;
        }
    }
}
