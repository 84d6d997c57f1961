using System.Globalization;
using Xunit;

namespace IsoTest.TestSupport;

/// <summary>
/// A network namespace beyond the host (root): a veth from the host's namespace with a /30 of 198.51.100.0/24
/// (TEST-NET-2) and a server on the far end, made with the ip command and removed with everything it made. Each
/// /30 is held by a lock file while in use, so test processes running at once never share one.
/// </summary>
internal sealed class OutsideNamespace : IAsyncDisposable
{
    public const int Port = 7299;
    private readonly string _name;
    private readonly System.Diagnostics.Process _server;
    private readonly FileStream _slot;

    private OutsideNamespace(string name, System.Diagnostics.Process server, FileStream slot, string address) =>
        (_name, _server, _slot, Address) = (name, server, slot, address);

    /// <summary>The server's address, beyond the host.</summary>
    public string Address { get; }

    public static async Task<OutsideNamespace> StartAsync(string reply)
    {
        var (slot, index) = TakeSlot();
        string near = $"198.51.100.{(index * 4) + 1}", far = $"198.51.100.{(index * 4) + 2}";
        var name = "isoout-" + Guid.NewGuid().ToString("N")[..8];
        Ip($"netns add {name}");
        try
        {
            Ip($"link add {name} type veth peer name eth0 netns {name}");
            Ip($"addr add {near}/30 dev {name}");
            Ip($"link set {name} up");
            Ip($"-n {name} addr add {far}/30 dev eth0");
            Ip($"-n {name} link set eth0 up");
            var server = System.Diagnostics.Process.Start("ip", ["netns", "exec", name, "busybox", "nc", "-ll", "-p", Port.ToString(CultureInfo.InvariantCulture), "-e", "/bin/echo", reply])!;
            await Task.Delay(100);
            return new OutsideNamespace(name, server, slot, far);
        }
        catch
        {
            Ip($"netns del {name}");
            slot.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _server.Kill();
        await _server.WaitForExitAsync();
        _server.Dispose();
        Ip($"netns del {_name}"); // takes the veth pair with it
        _slot.Dispose();
    }

    private static (FileStream Slot, int Index) TakeSlot()
    {
        for (int i = 0; i < 64; i++)
        {
            try
            {
                return (new FileStream($"/tmp/isotest-outside-{i}.lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose), i);
            }
            catch (IOException)
            {
                // another test process holds this one
            }
        }

        throw new InvalidOperationException("all 64 /30s of 198.51.100.0/24 are held by outside namespaces of other tests");
    }

    private static void Ip(string arguments)
    {
        using var ip = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        var error = ip.StandardError.ReadToEnd();
        ip.WaitForExit();
        Assert.True(ip.ExitCode == 0, $"ip {arguments}: {error}");
    }
}
