using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using IsoTest.Bench.Peers;

namespace IsoTest.Bench;

/// <summary>
/// The Docker API itself, dockerd against <c>isotest serve</c>: requests per second for a container inspect
/// (<c>GET /containers/{id}/json</c>, what clients poll while they wait) and for concurrent creates
/// (<c>POST /containers/create</c>), both with 8 requests in flight over one unix socket each, as parallel test
/// processes send them. Raw HTTP (no client library in between), API 1.41 on both.
/// </summary>
internal static class ApiBenchmark
{
    private const int InFlight = 8;

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var inspects = options.Quick ? 400 : 4000;
        var creates = options.Quick ? 40 : 200;
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        var rows = new List<string>();
        await using (var serve = await ServeHost.StartAsync(cancellationToken))
        {
            rows.Add(await MeasureAsync("isotest serve", serve.DockerHost[("unix://".Length)..], ServeHost.Image, inspects, creates, cancellationToken));
        }

        const string dockerd = "/var/run/docker.sock";
        rows.Add(File.Exists(dockerd)
            ? await MeasureAsync("dockerd", dockerd, TestcontainersPeer.Image, inspects, creates, cancellationToken)
            : "| dockerd | – | – | – | – | not measured: no /var/run/docker.sock (run .ci/docker-setup.sh) |");

        var s = new StringBuilder();
        s.AppendLine("## api: the Docker API, dockerd and isotest serve");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"Raw HTTP/1.1 over each daemon's unix socket, API 1.41, {InFlight} requests in flight (each on its own connection). *inspect*: {inspects:N0} × `GET /containers/{{id}}/json` of one running `sleep 600` container. *create*: {creates:N0} × `POST /containers/create` (`/bin/true`, 64 MiB, network none; created, not started), then all removed. isotest serve runs in this process with its own image store (image `isotest/host`); dockerd is Debian's, image `isotest/busybox:latest`.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        s.AppendLine("| daemon | inspect req/s | inspect median ms (p90) | create /s | create median ms (p90) | notes |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | --- |");
        foreach (var row in rows)
        {
            s.AppendLine(row);
        }

        return new Section("api", s.ToString());
    }

    private static async Task<string> MeasureAsync(string name, string socket, string image, int inspects, int creates, CancellationToken cancellationToken)
    {
        using var http = Client(socket);
        var body = JsonSerializer.Serialize(new
        {
            Image = image,
            Cmd = new[] { "sleep", "600" },
            HostConfig = new { Memory = 64L << 20, NetworkMode = "none" },
        });
        var sleeper = await CreateAsync(http, body, cancellationToken);
        var ids = new ConcurrentBag<string>();
        try
        {
            (await http.PostAsync($"containers/{sleeper}/start", null, cancellationToken)).EnsureSuccessStatusCode();
            var inspect = await RunAsync(inspects, async token =>
            {
                using var response = await http.GetAsync($"containers/{sleeper}/json", token);
                response.EnsureSuccessStatusCode();
                await response.Content.ReadAsByteArrayAsync(token);
            }, cancellationToken);

            var createBody = JsonSerializer.Serialize(new { Image = image, Cmd = new[] { "/bin/true" }, HostConfig = new { Memory = 64L << 20, NetworkMode = "none" } });
            var create = await RunAsync(creates, async token => ids.Add(await CreateAsync(http, createBody, token)), cancellationToken);
            return $"| {name} | {Stats.Num(inspect.Rate)} | {Stats.Num(inspect.Latency.Median)} ({Stats.Num(inspect.Latency.P90)}) | {Stats.Num(create.Rate)} | {Stats.Num(create.Latency.Median)} ({Stats.Num(create.Latency.P90)}) | {inspects:N0} inspects, {creates:N0} creates |";
        }
        finally
        {
            foreach (var id in ids.Append(sleeper))
            {
                using var removed = await http.DeleteAsync($"containers/{id}?force=1", CancellationToken.None);
            }
        }
    }

    private static async Task<string> CreateAsync(HttpClient http, string body, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsync("containers/create", new StringContent(body, Encoding.UTF8, "application/json"), cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST /containers/create: {(int)response.StatusCode} {text}");
        }

        return JsonDocument.Parse(text).RootElement.GetProperty("Id").GetString()!;
    }

    /// <summary><paramref name="count"/> calls, <see cref="InFlight"/> at a time: the rate over the whole run and each call's latency.</summary>
    private static async Task<(double Rate, Summary Latency)> RunAsync(int count, Func<CancellationToken, Task> call, CancellationToken cancellationToken)
    {
        var latencies = new ConcurrentBag<double>();
        var clock = Stopwatch.StartNew();
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = InFlight, CancellationToken = cancellationToken }, async (_, token) =>
        {
            var start = Stopwatch.GetTimestamp();
            await call(token);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        });
        return (count / clock.Elapsed.TotalSeconds, Summary.Of(latencies.ToArray()));
    }

    private static HttpClient Client(string socket) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = InFlight,
            ConnectCallback = async (_, token) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), token);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        })
        { BaseAddress = new Uri("http://docker/v1.41/"), Timeout = TimeSpan.FromMinutes(2) };
}
