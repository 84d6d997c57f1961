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
