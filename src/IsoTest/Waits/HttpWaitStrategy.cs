using System.Net;

namespace IsoTest.Waits;

/// <summary>Ready when an HTTP GET on a published port answers as expected.</summary>
internal sealed class HttpWaitStrategy(string path, int port, Func<HttpStatusCode, string, bool> isReady, string expectation) : PollingWaitStrategy
{
    /// <summary>A server that accepted the connection but never answers must not stall the wait until its timeout.</summary>
    internal static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(5);

    // One client for every wait: handlers are expensive, and each request closes its connection anyway.
    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        // A proxy from the environment must not intercept requests to the loopback.
        UseProxy = false,
        // The status the server sends is what the caller asked about, not the one after redirects.
        AllowAutoRedirect = false,
    })
    {
        Timeout = System.Threading.Timeout.InfiniteTimeSpan,
    };

    public string Path { get; } = path;

    public int Port { get; } = port;

    internal override IEnumerable<int> PortsUsed => [Port];

    public override string ToString() => $"HTTP GET {Path} on port {Port} {expectation}";

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        var uri = new Uri(attempt.Container.GetEndpoint(Port).ToUri(), Path);
        if (!attempt.PortSeenListening && attempt.Container is IContainerProbes { PortProbeIsCheap: true } probes)
        {
            // Before the server listens, a request through the published port is a connect to the forwarder, its
            // connect inside, a close and an exception here: the in-namespace probe alone says the same for less.
            if (!await probes.IsPortOpenAsync(Port, cancellationToken).ConfigureAwait(false))
            {
                attempt.LastResult = $"nothing listens on port {Port} inside the container yet (no request sent to {uri})";
                return false;
            }

            attempt.PortSeenListening = true;
        }

        using var attemptTimeout = new CancellationTokenSource(AttemptTimeout, attempt.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, attemptTimeout.Token);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        // A fresh connection per attempt: a pooled one may lead to a proxy in front of the container
        // (Docker's userland proxy accepts before the server is up), not to the server itself.
        request.Headers.ConnectionClose = true;
        try
        {
            using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseContentRead, linked.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(linked.Token).ConfigureAwait(false);
            if (isReady(response.StatusCode, body))
            {
                return true;
            }

            attempt.LastResult = $"{uri} answered {(int)response.StatusCode} {response.ReasonPhrase}";
            return false;
        }
        catch (HttpRequestException e)
        {
            attempt.LastResult = $"{uri}: {e.Message}";
            return false;
        }
        catch (OperationCanceledException) when (attemptTimeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            attempt.LastResult = $"{uri} did not answer within {AttemptTimeout.TotalSeconds:0} s";
            return false;
        }
    }
}
