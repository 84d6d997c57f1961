using System.Text;

namespace IsoTest.Engine.Networking;

/// <summary>
/// The <c>/etc/hosts</c> and <c>/etc/resolv.conf</c> of a container on user-defined networks: files in the
/// engine's state directory, bind-mounted into the container. The hosts file is rewritten as members come
/// and go, in place: a bind mount pins the inode, so a file replaced by rename would never be seen inside.
/// </summary>
internal static class HostsFile
{
    /// <summary>No DNS server is reachable: glibc then tries 127.0.0.1 (the container's own loopback), which refuses at once.</summary>
    public const string ResolvConf =
        "# Written by IsoTest: the names of this network's containers and host.isotest.internal resolve\n" +
        "# through /etc/hosts. No DNS server is reachable from the network, so lookups of other names fail fast.\n" +
        "options ndots:0 timeout:1 attempts:1\n";

    /// <summary>
    /// The <c>/etc/resolv.conf</c> of a member with a way out (<see cref="NetworkBuilder.WithOutboundAccess"/>): the
    /// host's own, as Docker gives containers on user-defined networks, minus the loopback servers (a member's
    /// 127.0.0.1 is its own, and slirp4netns keeps the host's loopback out). Names of the network still come from
    /// /etc/hosts first. With no usable server left, it is <see cref="ResolvConf"/> with a line saying why.
    /// </summary>
    public static string OutboundResolvConf(string hostResolvConf)
    {
        var kept = new StringBuilder();
        var servers = 0;
        foreach (var line in hostResolvConf.Split('\n'))
        {
            var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length >= 2 && words[0] == "nameserver")
            {
                if (System.Net.IPAddress.TryParse(words[1].Split('%')[0], out var address) && !System.Net.IPAddress.IsLoopback(address))
                {
                    kept.Append("nameserver ").Append(words[1]).Append('\n');
                    servers++;
                }
            }
            else if (words.Length >= 2 && words[0] is "search" or "domain" or "options")
            {
                kept.AppendJoin(' ', words).Append('\n');
            }
        }

        return servers == 0
            ? "# Written by IsoTest: the host's /etc/resolv.conf names no server a network member can reach (only loopback ones).\n" + ResolvConf
            : "# Written by IsoTest from the host's /etc/resolv.conf (loopback servers left out): this network has a way out.\n" + kept;
    }

    public static string Render(IEnumerable<(string Address, IEnumerable<string> Names)> entries)
    {
        var text = new StringBuilder("# Written by IsoTest and kept current as containers join and leave its networks.\n");
        text.Append("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        foreach (var (address, names) in entries)
        {
            var list = names.Where(n => n.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (list.Count > 0)
            {
                text.Append(address).Append('\t').AppendJoin(' ', list).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// Overwrites from the start, then cuts to length: one write of a few KiB, the inode kept. A reader at
    /// that instant may see the old tail after the new text (lines of names it already had), never an empty file.
    /// </summary>
    public static void WriteInPlace(string path, string content)
    {
        var bytes = Encoding.UTF8.GetBytes(content);
        using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite, 1);
        file.Write(bytes);
        file.SetLength(bytes.Length);
    }
}
