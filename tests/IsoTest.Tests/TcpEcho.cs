using System.Net.Sockets;
using System.Text;

namespace IsoTest.Tests;

/// <summary>One round trip to an echo server behind a published port: what went in must come back.</summary>
internal static class TcpEcho
{
    public static async Task<string> RoundTripAsync(ContainerEndpoint endpoint, string text, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken);
        var buffer = new byte[text.Length];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return Encoding.ASCII.GetString(buffer, 0, read);
    }
}
