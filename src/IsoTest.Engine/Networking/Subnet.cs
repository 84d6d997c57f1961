using System.Buffers.Binary;
using System.Net;

namespace IsoTest.Engine.Networking;

/// <summary>An IPv4 subnet of a network: .1 is the gateway (in the network's own namespace), members from .2.</summary>
internal readonly record struct Subnet(uint Base, int PrefixLength)
{
    /// <summary>Where candidates are taken from: 10.200.0.0-10.255.255.255, rarely used by hosts and VPNs.</summary>
    private const uint PoolStart = (10u << 24) | (200u << 16);
    private const uint PoolEnd = (10u << 24) | (255u << 16) | 0xFFFF;

    /// <summary>Members it can hold: all addresses but the network's, the gateway's and the broadcast address.</summary>
    public int Capacity => (1 << (32 - PrefixLength)) - 3;

    public IPAddress Gateway => ToAddress(Base + 1);

    public IPAddress Member(int slot) => ToAddress(Base + 2 + (uint)slot);

    public override string ToString() => $"{ToAddress(Base)}/{PrefixLength}";

    /// <summary>
    /// The first candidate of <paramref name="prefixLength"/> bits that overlaps nothing in <paramref name="taken"/>
    /// (the host's routes and addresses, and this engine's other networks: a container on two networks
    /// needs two subnets that do not overlap), or null when every candidate is taken.
    /// </summary>
    public static Subnet? Choose(int prefixLength, IEnumerable<(IPAddress Address, int PrefixLength)> taken)
    {
        var blocks = taken.Select(t => (Base: ToUInt(t.Address) & Mask(t.PrefixLength), t.PrefixLength)).ToList();
        uint size = 1u << (32 - prefixLength);
        for (ulong candidate = PoolStart; candidate + size - 1 <= PoolEnd; candidate += size)
        {
            var subnet = new Subnet((uint)candidate, prefixLength);
            if (!blocks.Any(b => subnet.Overlaps(b.Base, b.PrefixLength)))
            {
                return subnet;
            }
        }

        return null;
    }

    /// <summary>Two prefixes overlap when the shorter one contains the other's base.</summary>
    public bool Overlaps(uint otherBase, int otherPrefix)
    {
        int shorter = Math.Min(PrefixLength, otherPrefix);
        return (Base & Mask(shorter)) == (otherBase & Mask(shorter));
    }

    private static uint Mask(int prefixLength) => prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);

    private static uint ToUInt(IPAddress address) => BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());

    private static IPAddress ToAddress(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
