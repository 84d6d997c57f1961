using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IsoTest.TestSupport;

/// <summary>A server on the host's loopback (or on <c>address</c>) that answers every connection with one line, then closes it.</summary>
internal sealed class LineServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();

    public LineServer(string line, IPAddress? address = null)
    {
        _listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = ServeAsync(Encoding.ASCII.GetBytes(line + "\n"));
    }

    public int Port { get; }

    /// <summary>The host's first IPv4 address on a non-loopback interface that is up: reached without the host's loopback.</summary>
    public static IPAddress HostAddress() =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback && i.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .First(a => a.AddressFamily == AddressFamily.InterNetwork);

    private async Task ServeAsync(byte[] reply)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var client = await _listener.AcceptSocketAsync(_stop.Token);
                await client.SendAsync(reply, SocketFlags.None);
                client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
