using System.Diagnostics;
using IsoTest.Engine.Images;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

/// <summary>
/// The real Debian bookworm image (.ci/images.sh: debootstrap minbase from Debian's mirror) pushed with skopeo to a
/// real docker-registry and pulled by the engine's registry client: thousands of files, hardlinks, setuid programs,
/// many owners; inside an engine container the tree is what <c>docker run</c> of the same image shows.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class DebianImageTests : IAsyncLifetime
{
    // What each runtime adds itself (Docker binds hosts, hostname, resolv.conf; the engine mounts /run, /tmp, /dev).
    private const string Listing =
        "{ find /etc /usr/bin /usr/sbin /usr/lib/os-release /var/lib/dpkg/info -xdev ! -name hosts ! -name hostname ! -name resolv.conf ! -name mtab \\( " +
        // A directory's link count is the overlay's business (Docker's merged /etc says 1), not the image's.
        "\\( -type d -exec stat -c '%n %a %u %g %F' {} + \\) -o \\( ! -type d -exec stat -c '%n %a %u %g %F %h %s %N' {} + \\) \\); } | sort";

    private static readonly string[] OwnerRoots = ["/etc", "/usr/bin", "/usr/sbin", "/var"];
    private static readonly string[] RuntimeFiles = ["hosts", "hostname", "resolv.conf", "mtab"];
    private static readonly string OwnerListing =
        $"find {string.Join(' ', OwnerRoots)} -xdev {string.Join(' ', RuntimeFiles.Select(n => $"! -name {n}"))} -exec stat -c '%u %g %n' {{}} +";

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-debian-").FullName;
    private LocalRegistry _registry = null!;
    private EngineBackend _engine = null!;

    public Task InitializeAsync()
    {
        DebianImages.EnsureBuilt();
        _registry = LocalRegistry.Start();
        try
        {
            LocalRegistry.Run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"oci:{DebianImages.Layout}:docker.io/{DebianImages.Debian}", $"docker://{_registry.Host}/debian:bookworm");
        }
        catch
        {
            // xunit skips DisposeAsync when InitializeAsync throws: the registry and the directory go here.
            _registry.Dispose();
            Directory.Delete(_dir, recursive: true);
            throw;
        }

        _engine = new EngineBackend();
        var store = new ImageStore(Path.Combine(_dir, "store"));
        _engine.Images = new Lazy<ImageService>(() => new ImageService(store, DockerCredentials.None, new RegistrySettings(new HashSet<string>(), [])));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _registry.Dispose();
        ImageStore.RemoveTree(_dir);
    }

    [Fact]
    public async Task FromImage_DebianFromARegistry_RunsAndMatchesDockerRun()
    {
        var events = new List<ImagePullProgress>();
        var reference = $"{_registry.Host}/debian:bookworm";
        var run = await _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(reference),
            PullProgress = new SyncProgress(events.Add),
            Command = ["bash", "-c", "cat /etc/debian_version; . /etc/os-release; echo $VERSION_CODENAME; dpkg-query -W -f '${Package}\\n' dpkg apt bash; " + Listing],
        }, TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("12.", lines[0], StringComparison.Ordinal);
        Assert.Equal("bookworm", lines[1]);
        Assert.Equal(["apt", "bash", "dpkg"], lines[2..5].Order());
        // The builder's progress saw the pull: resolved, then the layer downloaded and unpacked.
        Assert.Contains(events, e => e.Phase == ImagePullPhase.Resolved);
        Assert.Contains(events, e => e.Phase == ImagePullPhase.Complete);

        // Warm: Never finds it in the store without asking the registry.
        var warm = await _engine.RunAsync(new ContainerSpec { RootFileSystem = RootFileSystem.FromImage(reference), PullPolicy = ImagePullPolicy.Never, Command = ["true"] });
        Assert.Equal(0, warm.ExitCode);

        if (!Specs.IsRoot)
        {
            // The daemon's socket is root's: rootless, the owners are compared with the layer's own, which the root
            // half of this test proves are what docker run shows. With subordinate ranges they are all there.
            var owners = await _engine.RunAsync(new ContainerSpec
            {
                RootFileSystem = RootFileSystem.FromImage(reference),
                PullPolicy = ImagePullPolicy.Never,
                Command = ["bash", "-c", OwnerListing],
            });
            Assert.True(owners.ExitCode == 0, owners.Stderr);
            var seen = AssertOwnersAreTheLayers(DebianImages.Debian, owners.Stdout);
            Assert.True(seen.Select(l => l.Split(' ')[1]).Distinct().Count() >= 3, "the image has files of several groups (root, shadow, utmp, mail, staff)");
            return;
        }

        var docker = System.Diagnostics.Process.Start(new ProcessStartInfo("docker", ["run", "--rm", "--entrypoint", "bash", DebianImages.Debian, "-c", Listing]) { RedirectStandardOutput = true })!;
        var expected = (await docker.StandardOutput.ReadToEndAsync()).Trim();
        await docker.WaitForExitAsync();
        Assert.Equal(0, docker.ExitCode);
        var listing = lines[5..];
        var want = expected.Split('\n');
        Assert.Equal(want.Except(listing).Take(20), listing.Except(want).Take(20));
        Assert.Equal(want, listing);
    }

    /// <summary>`uid gid /path` of every entry of <paramref name="image"/>'s layers in the OCI layout under <see cref="OwnerRoots"/>, as the tars record them (upper layers win).</summary>
    private static IEnumerable<string> LayerOwnerListing(string image)
    {
        var blobs = Path.Combine(DebianImages.Layout, "blobs", "sha256");
        string Blob(string digest) => Path.Combine(blobs, digest["sha256:".Length..]);
        var index = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(DebianImages.Layout, "index.json")))!;
        var manifest = index["manifests"]!.AsArray().Single(m => (string?)m!["annotations"]?["org.opencontainers.image.ref.name"] == $"docker.io/{image}")!;
        var layers = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Blob((string)manifest["digest"]!)))!["layers"]!.AsArray();
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            using var file = File.OpenRead(Blob((string)layer!["digest"]!));
            using var tar = new System.Formats.Tar.TarReader(LayerUnpacker.Decompress(file));
            while (tar.GetNextEntry() is { } entry)
            {
                var path = "/" + LayerUnpacker.Clean(entry.Name);
                var name = Path.GetFileName(path);
                if (name.StartsWith(".wh.", StringComparison.Ordinal))
                {
                    owners.Remove(Path.Combine(Path.GetDirectoryName(path)!, name[4..]));
                }
                else if (OwnerRoots.Any(r => path == r || path.StartsWith(r + "/", StringComparison.Ordinal)) && !RuntimeFiles.Contains(name))
                {
                    owners[path] = $"{entry.Uid} {entry.Gid} {path}";
                }
            }
        }

        return owners.Values;
    }

    [Fact]
    public async Task FromImage_PostgresFromTheLayout_FilesHaveTheLayersOwners()
    {
        // Three layers with several owners (postgres's data and run directories, messagebus, _apt) and whiteouts;
        // rootless these are subordinate ids, so the server's own user owns its directories as in Docker.
        await _engine.LoadImagesAsync(DebianImages.Layout);
        var run = await _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(DebianImages.Postgres),
            PullPolicy = ImagePullPolicy.Never,
            User = "0",
            Command = ["bash", "-c", OwnerListing],
        }, TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var seen = AssertOwnersAreTheLayers(DebianImages.Postgres, run.Stdout);
        Assert.True(seen.Select(l => l.Split(' ')[0]).Distinct().Count() >= 3, "the image has files of several owners (root, postgres, _apt)");

        // The server's user writes where the image lets it, as itself (the entrypoint's initdb needs exactly this); a
        // bind-mounted directory of the caller's is root's inside, as under rootless Docker (as root: root's anyway).
        var host = Directory.CreateDirectory(Path.Combine(_dir, "bind"));
        var postgres = await _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(DebianImages.Postgres),
            PullPolicy = ImagePullPolicy.Never,
            Mounts = [new MountSpec(MountKind.Bind, host.FullName, "/mnt/host")],
            Command = ["sh", "-c", "id -un; touch /var/lib/postgresql/probe /var/run/postgresql/probe && stat -c '%U %G' /var/lib/postgresql/probe; stat -c '%u %g' /mnt/host"],
        });
        Assert.True(postgres.ExitCode == 0, postgres.Stderr);
        Assert.Equal("postgres\npostgres postgres\n0 0\n", postgres.Stdout);
    }

    /// <summary>The container's `uid gid /path` lines equal the layers' (the same set, in any order); returns them.</summary>
    private static List<string> AssertOwnersAreTheLayers(string image, string listing)
    {
        var seen = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();
        var layers = LayerOwnerListing(image).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(layers.Except(seen).Take(20), seen.Except(layers).Take(20));
        Assert.Equal(layers, seen);
        return seen;
    }

    private sealed class SyncProgress(Action<ImagePullProgress> report) : IProgress<ImagePullProgress>
    {
        public void Report(ImagePullProgress value)
        {
            lock (this)
            {
                report(value);
            }
        }
    }
}
