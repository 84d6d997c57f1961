using System.Diagnostics;
using System.Globalization;
using System.Text;
using IsoTest.Engine.Images;
using IsoTest.TestSupport;

namespace IsoTest.Bench;

/// <summary>
/// Pull + unpack of the same images from a local registry (Debian's docker-registry on loopback, the images pushed from
/// .ci/images.sh's OCI layout with skopeo) by three clients, each into an empty store every round: IsoTest's engine
/// (its image service: manifest, blobs streamed and verified, layers unpacked), <c>docker pull</c> (dockerd, the image
/// removed again after each round), and <c>skopeo copy</c> + <c>umoci unpack</c> (what a runc user would do). Rounds
/// alternate between the clients so load that comes and goes hits all of them.
/// </summary>
internal static class PullBenchmark
{
    private static readonly Dictionary<string, string> DockerEnv = new() { ["DOCKER_API_VERSION"] = Environment.GetEnvironmentVariable("DOCKER_API_VERSION") ?? "1.41" };

    private static readonly (string Name, string Tag)[] Images =
    [
        ("Debian bookworm (minbase, 1 layer)", DebianImages.Debian),
        ("PostgreSQL 15 on it (2 layers)", DebianImages.Postgres),
    ];

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        if (!LocalRegistry.Available || Shell.Which("umoci") is null)
        {
            throw new InvalidOperationException("pull needs docker-registry, skopeo and umoci: run .ci/setup.sh");
        }

        if (!File.Exists(Path.Combine(DebianImages.Layout, "index.json")))
        {
            throw new InvalidOperationException($"no image layout in {DebianImages.Layout}: run .ci/images.sh as root");
        }

        var rounds = options.Quick ? 2 : 5;
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        using var registry = LocalRegistry.Start();
        var work = Directory.CreateTempSubdirectory("isotest-bench-pull-");
        var s = new StringBuilder();
        try
        {
            foreach (var (_, tag) in Images)
            {
                // From dockerd's copy (.ci/images.sh loads both there): skopeo's oci transport finds only the layout's
                // OCI-typed manifests by name, and the PostgreSQL image's is Docker's schema 2.
                LocalRegistry.Run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"docker-daemon:{tag}", $"docker://{registry.Host}/{tag}");
            }

            // dockerd already holds these layers (.ci/images.sh loaded them), so its pull would only fetch a manifest:
            // the bench pulls with a dockerd of its own, on an empty data root, which it stops and removes at the end.
            await using var dockerd = await PrivateDockerd.StartAsync(work.FullName, registry.Host, cancellationToken);
            var clients = new (string Name, Func<string, string, Task> Pull)[]
            {
                ("IsoTest engine", (reference, dir) => IsoTestPullAsync(reference, dir, cancellationToken)),
                ("docker pull", (reference, _) => dockerd.PullAsync(reference, cancellationToken)),
                ("skopeo copy + umoci unpack", (reference, dir) => SkopeoUmociAsync(reference, dir, cancellationToken)),
            };
            s.AppendLine("## pull: pull + unpack from a local registry");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture,
                $"Debian's docker-registry on 127.0.0.1, the images pushed with skopeo from dockerd, where .ci/images.sh put them (built from Debian's packages). Each round each client pulls the image into an empty store and unpacks it: IsoTest's image service (a fresh store: blobs streamed with their digests checked, layers unpacked once), `docker pull` (a dockerd of the bench's own on an empty data root, overlay2: the machine's dockerd already holds these layers; the image and its layers removed after each round), `skopeo copy docker://… oci:DIR` + `umoci unpack`. {rounds} rounds, clients alternating. Seconds, wall clock.");
            s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {{after}}; CPU steal {{steal}}.");
            s.AppendLine();
            s.AppendLine("| image | client | median s | p90 | min – max | vs IsoTest (paired) |");
            s.AppendLine("| --- | --- | ---: | ---: | ---: | ---: |");
            foreach (var (name, tag) in Images)
            {
                var reference = $"{registry.Host}/{tag}";
                var samples = clients.ToDictionary(c => c.Name, _ => new List<double>());
                for (var round = 0; round < rounds; round++)
                {
                    foreach (var (client, pull) in clients)
                    {
                        var dir = Path.Combine(work.FullName, $"{client.Replace(' ', '-')}-{round}");
                        Directory.CreateDirectory(dir);
                        var clock = Stopwatch.StartNew();
                        await pull(reference, dir);
                        samples[client].Add(clock.Elapsed.TotalSeconds);
                        Directory.Delete(dir, recursive: true);
                        if (client == "docker pull")
                        {
                            await dockerd.RemoveAsync(reference); // its layers go with it: the next round downloads them again
                        }
                    }

                    Console.Error.WriteLine($"  pull: {tag} round {round + 1}/{rounds}");
                }

                foreach (var (client, _) in clients)
                {
                    var ratio = Stats.PairedRatio(samples[client], samples["IsoTest engine"]);
                    s.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {client} | {Stats.Cells(Summary.Of(samples[client]))} | {(ratio is { } r ? Stats.Num(r) + "×" : "–")} |");
                }
            }
        }
        finally
        {
            work.Delete(recursive: true);
        }

        return new Section("pull", s.ToString().Replace("{after}", $"{Load.Now()} after", StringComparison.Ordinal).Replace("{steal}", Steal.Since(stealBefore), StringComparison.Ordinal));
    }

    private static async Task IsoTestPullAsync(string reference, string dir, CancellationToken cancellationToken)
    {
        using var images = new ImageService(new ImageStore(dir));
        await images.PullAsync(reference, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// A dockerd with its own data root, socket, exec root and bridge (no iptables), for pulls into an empty store.
    /// Not <c>--bridge none</c>: a dockerd without a bridge deletes any link named docker0 when it starts, which took the
    /// machine's own dockerd's bridge away (seen here). So it gets a bridge of its own, made here and removed after it.
    /// </summary>
    private sealed class PrivateDockerd : IAsyncDisposable
    {
        private readonly Process _daemon;
        private readonly string _root;
        private readonly string _bridge;
        private readonly Dictionary<string, string> _env;

        private PrivateDockerd(Process daemon, string root, string bridge)
        {
            _daemon = daemon;
            _root = root;
            _bridge = bridge;
            _env = new Dictionary<string, string>(DockerEnv) { ["DOCKER_HOST"] = $"unix://{root}/docker.sock" };
        }

        public static async Task<PrivateDockerd> StartAsync(string work, string registry, CancellationToken cancellationToken)
        {
            var root = Path.Combine(work, "dockerd");
            Directory.CreateDirectory(root);
            // 198.18.0.0/15 is for benchmarks (RFC 2544): nothing the host routes uses it. No container runs on it.
            var bridge = $"isopull{Environment.ProcessId % 100000}";
            foreach (var ip in new[] { $"link add {bridge} type bridge", $"addr add 198.18.247.1/30 dev {bridge}" })
            {
                var made = await Shell.RunAsync("ip", ip.Split(' '), cancellationToken: cancellationToken);
                if (made.ExitCode != 0)
                {
                    await Shell.RunAsync("ip", ["link", "del", bridge]);
                    throw new InvalidOperationException($"ip {ip}: {made.Tail}");
                }
            }

            var info = new ProcessStartInfo("dockerd") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[]
                     {
                         "--data-root", $"{root}/data", "--exec-root", $"{root}/exec", "--pidfile", $"{root}/dockerd.pid",
                         "--host", $"unix://{root}/docker.sock", "--bridge", bridge, "--iptables=false", "--ip-masq=false",
                         "--storage-driver", "overlay2", "--insecure-registry", registry,
                     })
            {
                info.ArgumentList.Add(arg);
            }

            var daemon = Process.Start(info) ?? throw new InvalidOperationException("could not start a dockerd for the pull benchmark");
            daemon.ErrorDataReceived += (_, _) => { };
            daemon.OutputDataReceived += (_, _) => { };
            daemon.BeginErrorReadLine();
            daemon.BeginOutputReadLine();
            var dockerd = new PrivateDockerd(daemon, root, bridge);
            for (var i = 0; i < 120 && !daemon.HasExited; i++)
            {
                if ((await Shell.RunAsync("docker", ["version", "--format", "{{.Server.Version}}"], dockerd._env, cancellationToken)).ExitCode == 0)
                {
                    return dockerd;
                }

                await Task.Delay(250, cancellationToken);
            }

            await dockerd.DisposeAsync();
            throw new InvalidOperationException("the pull benchmark's own dockerd did not answer within 30 s");
        }

        public async Task PullAsync(string reference, CancellationToken cancellationToken)
        {
            var pull = await Shell.RunAsync("docker", ["pull", "--quiet", reference], _env, cancellationToken);
            if (pull.ExitCode != 0)
            {
                throw new InvalidOperationException($"docker pull {reference} exited with {pull.ExitCode}: {pull.Tail}");
            }
        }

        public Task RemoveAsync(string reference) => Shell.RunAsync("docker", ["rmi", "-f", reference], _env, CancellationToken.None);

        public async ValueTask DisposeAsync()
        {
            await Shell.StopDaemonAsync(_daemon);
            _daemon.Dispose();
            await Shell.RunAsync("ip", ["link", "del", _bridge]);
            Directory.Delete(_root, recursive: true);
        }
    }

    private static async Task SkopeoUmociAsync(string reference, string dir, CancellationToken cancellationToken)
    {
        var copy = await Shell.RunAsync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", $"docker://{reference}", $"oci:{dir}/layout:bench"], cancellationToken: cancellationToken);
        if (copy.ExitCode != 0)
        {
            throw new InvalidOperationException($"skopeo copy {reference} exited with {copy.ExitCode}: {copy.Tail}");
        }

        var unpack = await Shell.RunAsync("umoci", ["unpack", "--image", $"{dir}/layout:bench", $"{dir}/bundle"], cancellationToken: cancellationToken);
        if (unpack.ExitCode != 0)
        {
            throw new InvalidOperationException($"umoci unpack exited with {unpack.ExitCode}: {unpack.Tail}");
        }
    }
}
