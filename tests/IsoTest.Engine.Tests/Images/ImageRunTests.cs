using System.Diagnostics;
using System.Text.Json.Nodes;
using IsoTest.Engine.Images;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

/// <summary>Images run on the engine: the same tree, modes, owners, links and config that <c>docker run</c> shows.</summary>
[Collection(SerialCollection.Name)]
public sealed class ImageRunTests : IAsyncLifetime
{
    // Every image path but what each runtime adds itself (Docker binds /etc/hosts, hostname, resolv.conf).
    private const string Listing =
        "find /bin /etc /data /usr /home /marker -xdev ! -name hosts ! -name hostname ! -name resolv.conf ! -name mtab " +
        "-exec stat -c '%n %a %u %g %F %N' {} + | sort";

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-imagerun-").FullName;
    private LocalRegistry _registry = null!;
    private EngineBackend _engine = null!;
    private ImageService _images = null!;

    public Task InitializeAsync()
    {
        _registry = LocalRegistry.Start();
        var layout = Path.Combine(_dir, "layout");
        OciLayout.Write(layout, "v1", BusyboxImage());
        _registry.Push(layout, "v1", "busybox-layered:v1");
        _engine = new EngineBackend();
        _images = new ImageService(new ImageStore(Path.Combine(_dir, "store")), DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []));
        _engine.Images = new Lazy<ImageService>(() => _images);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _images.Dispose();
        _registry.Dispose();
        ImageStore.RemoveTree(_dir);
    }

    private string Reference => $"{_registry.Host}/busybox-layered:v1";

    /// <summary>busybox-static in three layers: a deletion, an opaque directory, setuid, owners, links.</summary>
    private static TestImage BusyboxImage()
    {
        var busybox = File.ReadAllBytes("/bin/busybox");
        var first = new LayerBuilder().Dir("bin").Bytes("bin/busybox", busybox, 0x1ED);
        foreach (var applet in new[] { "sh", "ls", "cat", "stat", "find", "sort", "id", "pwd", "env", "echo", "test", "sleep" })
        {
            first.Symlink("bin/" + applet, "/bin/busybox");
        }

        first.Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:999:998:app:/home/app:/bin/sh\n")
            .File("etc/group", "root:x:0:\napp:x:998:\n").File("etc/gone", "deleted by layer 2")
            .Dir("data").File("data/old", "hidden by the opaque dir").File("marker", "base")
            .Dir("home").Dir("home/app", 0x1C0, 999, 998).File("home/app/.profile", "p", 0x1A0, 999, 998);
        var second = new LayerBuilder().Whiteout("etc/gone").Opaque("data").File("data/new", "new", 0x1A4, 999, 998)
            .Dir("usr").Dir("usr/local").Dir("usr/local/bin").Bytes("usr/local/bin/suid", busybox, 0x9ED)
            .Hardlink("usr/local/bin/suid-link", "usr/local/bin/suid", 0x9ED);
        var third = new LayerBuilder().Symlink("usr/local/bin/rel", "../../../bin/busybox").File("marker", "top", 0x124);
        return new TestImage(
            [(first.Tar(), Compression.Gzip), (second.Tar(), Compression.Gzip), (third.Tar(), Compression.Gzip)],
            new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/local/bin:/bin", "GREETING=hello"),
                ["Entrypoint"] = new JsonArray("/bin/sh", "-c"),
                ["Cmd"] = new JsonArray("echo default-cmd"),
                ["WorkingDir"] = "/home/app",
                ["User"] = "app",
            },
            TestImage.HostArchitecture);
    }

    [Fact]
    public async Task FromImage_TreeAsLayeredAndConfigApplied()
    {
        // The image's Entrypoint with its Cmd, as `docker run image` does.
        var plain = await _engine.RunAsync(new ContainerSpec { RootFileSystem = RootFileSystem.FromImage(Reference) });
        Assert.Equal(0, plain.ExitCode);
        Assert.Equal("default-cmd\n", plain.Stdout);

        // A command replaces Cmd and stays the Entrypoint's argument; Env, WorkingDir and User come from the config.
        var run = await _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(Reference),
            Command = ["echo $GREETING; pwd; id -u; id -g; cat /marker; echo; test -e /etc/gone || echo gone; ls /data; " + Listing],
        });
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n');
        Assert.Equal(["hello", "/home/app", "999", "998", "top", "gone", "new"], lines[..7]);
        var listing = string.Join('\n', lines[7..]).Trim();
        Assert.Contains("/usr/local/bin/suid 4755", listing, StringComparison.Ordinal);
        Assert.Contains("symbolic link '/bin/sh' -> '/bin/busybox'", listing, StringComparison.Ordinal);

        // An explicit entrypoint drops the image's Cmd.
        var entry = await _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(Reference),
            Entrypoint = ["/bin/echo"],
            Command = ["own"],
        });
        Assert.Equal("own\n", entry.Stdout);

        if (!Specs.IsRoot)
        {
            return; // the daemon's socket is root's; the rootless engine maps every owner to the caller
        }

        Assert.Contains("/home/app/.profile 640 999 998 regular file", listing, StringComparison.Ordinal);
        // The same image through the real Docker daemon: the listing must be identical.
        Docker("pull", "-q", Reference);
        try
        {
            var docker = Docker("run", "--rm", Reference, Listing).Trim();
            Assert.Equal(docker, listing);
        }
        finally
        {
            Docker("rmi", "-f", Reference);
        }
    }

    [Fact]
    public async Task FromImage_UnknownTag_IsAnImagePullExceptionNamingTheRegistry()
    {
        var e = await Assert.ThrowsAsync<ImagePullException>(() => _engine.RunAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage($"{_registry.Host}/busybox-layered:nope"),
            Command = ["true"],
        }));
        Assert.Contains(_registry.Host, e.Message, StringComparison.Ordinal);
        Assert.Contains("MANIFEST_UNKNOWN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prune_WhileAContainerRuns_KeepsItsImageAndLayers_UntilItIsRemoved()
    {
        // Its own top layer, so that what only this image uses can go once nothing holds it.
        var image = BusyboxImage();
        image = image with { Layers = [.. image.Layers, (new LayerBuilder().File("only-here", Guid.NewGuid().ToString("N")).Tar(), Compression.Gzip)] };
        var layout = Path.Combine(_dir, "layout-prune");
        OciLayout.Write(layout, "v1", image);
        _registry.Push(layout, "v1", "busybox-prune:v1");
        var reference = $"{_registry.Host}/busybox-prune:v1";
        var stored = await _images.PullAsync(reference);
        var own = stored.Layers[^1];

        var container = await _engine.CreateAsync(new ContainerSpec { RootFileSystem = RootFileSystem.FromImage(reference), Entrypoint = ["/bin/sleep"], Command = ["60"] });
        try
        {
            await container.StartAsync();
            Assert.True(_images.Remove(reference));

            var held = _images.Prune();

            Assert.Equal(0, held.Layers);
            Assert.True(Directory.Exists(own.Directory));
            Assert.True(_images.Store.HasBlob(stored.ManifestDigest));
            Assert.True(_images.Store.HasBlob(stored.ConfigDigest));
            var cat = await container.ExecAsync(["/bin/cat", "/only-here"]);
            Assert.Equal(0, cat.ExitCode);
        }
        finally
        {
            await container.DisposeAsync();
        }

        // Removed: nothing holds the image, and no tag reaches it.
        // (Its busybox layers go too unless another test's tag still reaches them.)
        var freed = _images.Prune();
        Assert.True(freed.Layers >= 1);
        Assert.False(Directory.Exists(own.Directory));
        Assert.False(_images.Store.HasBlob(stored.ManifestDigest));
    }

    [Fact]
    public async Task CreateFails_TheImageIsNotLeftHeld()
    {
        var image = BusyboxImage();
        image = image with { Layers = [.. image.Layers, (new LayerBuilder().File("only-here", Guid.NewGuid().ToString("N")).Tar(), Compression.Gzip)] };
        var layout = Path.Combine(_dir, "layout-fails");
        OciLayout.Write(layout, "v1", image);
        _registry.Push(layout, "v1", "busybox-fails:v1");
        var reference = $"{_registry.Host}/busybox-fails:v1";

        // A user the image's /etc/passwd lacks: refused after the image was resolved (and held).
        await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(new ContainerSpec { RootFileSystem = RootFileSystem.FromImage(reference), User = "nobody-here", Command = ["true"] }));
        var stored = _images.Find(reference)!;
        Assert.True(_images.Remove(reference));

        Assert.True(_images.Prune().Layers >= 1);
        Assert.False(Directory.Exists(stored.Layers[^1].Directory));
    }

    private static string Docker(params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new ProcessStartInfo("docker", args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"docker {string.Join(' ', args)}: {stderr}");
        return stdout.Result;
    }
}
