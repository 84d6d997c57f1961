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
            return; // rootless without subordinate ids, every owner is the caller; the daemon's socket is root's
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
