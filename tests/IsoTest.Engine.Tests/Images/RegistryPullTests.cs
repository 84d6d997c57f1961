using System.Text.Json.Nodes;
using IsoTest.Engine.Images;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

/// <summary>A small image of several layers, with a deletion and an opaque directory, in an OCI layout.</summary>
internal static class SampleImages
{
    public static TestImage Layered(string architecture = "amd64", string marker = "base", Compression second = Compression.Zstd) => new(
        [
            (new LayerBuilder().Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:999:998:app:/home/app:/bin/sh\n")
                .File("etc/group", "root:x:0:\napp:x:998:\n").File("etc/gone", "deleted later").Dir("data").File("data/old", "old")
                .File("marker", marker).Dir("home/app", 0x1C0, 999, 998).File("home/app/.profile", "p", 0x1A4, 999, 998).Tar(), Compression.Gzip),
            (new LayerBuilder().Whiteout("etc/gone").Opaque("data").File("data/new", "new").File("usr/bin/suid", "s", 0x9ED).Hardlink("usr/bin/suid-link", "usr/bin/suid", 0x9ED).Tar(), second),
            (new LayerBuilder().Symlink("bin", "usr/bin").Tar(), Compression.None),
        ],
        new JsonObject
        {
            ["Env"] = new JsonArray("PATH=/usr/local/bin:/usr/bin:/bin", "APP=1"),
            ["Cmd"] = new JsonArray("sh"),
            ["WorkingDir"] = "/home/app",
            ["User"] = "app",
            ["ExposedPorts"] = new JsonObject { ["8080/tcp"] = new JsonObject() },
            ["Labels"] = new JsonObject { ["org.example"] = "yes" },
            ["StopSignal"] = "SIGINT",
        },
        architecture);
}

public sealed class RegistryPullTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-pull-").FullName;

    public void Dispose() => ImageStore.RemoveTree(_dir);

    private ImageService Service(RegistryCredential? credential = null, Platform? platform = null, string? store = null)
    {
        var config = Path.Combine(_dir, $"docker-config-{Guid.NewGuid():N}.json");
        if (credential is not null)
        {
            File.WriteAllText(config, $"{{\"auths\":{{\"{credential.Username}\":{{\"auth\":\"{credential.Secret}\"}}}}}}");
        }

        return new ImageService(new ImageStore(store ?? Path.Combine(_dir, "store")), new DockerCredentials(config),
            new RegistrySettings(new HashSet<string>(), []), platform ?? new Platform("amd64", "linux"));
    }

    private string Layout(string tag, params TestImage[] images)
    {
        var layout = Path.Combine(_dir, "layout-" + Guid.NewGuid().ToString("N")[..8]);
        OciLayout.Write(layout, tag, images);
        return layout;
    }

    [Fact]
    public async Task Pull_FromRealRegistry_StoresEveryLayerInOverlayForm()
    {
        using var registry = LocalRegistry.Start();
        registry.Push(Layout("v1", SampleImages.Layered()), "v1", "team/app:v1");
        using var service = Service();
        var events = new List<ImagePullProgress>();
        var image = await service.PullAsync($"{registry.Host}/team/app:v1", new SyncProgress(events.Add));

        Assert.Equal($"{registry.Host}/team/app:v1", image.Reference.ToString());
        Assert.Equal(3, image.Layers.Count);
        var (l0, l1, l2) = (image.Layers[0].Directory, image.Layers[1].Directory, image.Layers[2].Directory);
        Assert.Equal("old", File.ReadAllText(Path.Combine(l0, "data/old")));
        Assert.Equal('c', FsProbe.Type(Path.Combine(l1, "etc/gone")));
        Assert.NotNull(FsProbe.Xattr(Path.Combine(l1, "data"), service.Store.Unpack.OverlayXattrPrefix + "opaque"));
        Assert.Equal("usr/bin", new FileInfo(Path.Combine(l2, "bin")).LinkTarget);
        Assert.Equal(image.Layers[0].Directory, Path.GetFullPath(Path.Combine(Path.GetDirectoryName(image.Layers[0].ShortLink)!, new FileInfo(image.Layers[0].ShortLink).LinkTarget!)));
        Assert.Equal(["sh"], image.Config.Config!.Cmd!);
        Assert.Equal("app", image.Config.Config.User);
        Assert.Contains(events, e => e.Phase == ImagePullPhase.Downloading && e.Total > 0);
        Assert.Equal(3, events.Count(e => e.Phase == ImagePullPhase.Complete));

        // A second pull of the same image finds everything: no layer is fetched or unpacked again.
        events.Clear();
        var again = await service.ResolveAsync($"{registry.Host}/team/app:v1", ImagePullPolicy.Missing, new SyncProgress(events.Add));
        Assert.Equal(image.ManifestDigest, again.ManifestDigest);
        Assert.Empty(events);
        var always = await service.ResolveAsync($"{registry.Host}/team/app:v1", ImagePullPolicy.Always, new SyncProgress(events.Add));
        Assert.Equal(3, events.Count(e => e.Phase == ImagePullPhase.AlreadyExists));
        Assert.Equal(image.ManifestDigest, always.ManifestDigest);
    }

    [Fact]
    public async Task Pull_MultiPlatformIndex_PicksThePlatform_AndSaysWhenItIsMissing()
    {
        using var registry = LocalRegistry.Start();
        registry.Push(Layout("multi", SampleImages.Layered("amd64", "amd"), SampleImages.Layered("arm64", "arm")), "multi", "multi:1");
        using (var amd = Service(platform: new Platform("amd64", "linux")))
        {
            var image = await amd.PullAsync($"{registry.Host}/multi:1");
            Assert.Equal("amd", File.ReadAllText(Path.Combine(image.Layers[0].Directory, "marker")));
            Assert.Equal("amd64", image.Config.Architecture);
        }

        using (var arm = Service(platform: new Platform("arm64", "linux", "v8"), store: Path.Combine(_dir, "store-arm")))
        {
            var image = await arm.PullAsync($"{registry.Host}/multi:1");
            Assert.Equal("arm", File.ReadAllText(Path.Combine(image.Layers[0].Directory, "marker")));
        }

        using var s390 = Service(platform: new Platform("s390x", "linux"), store: Path.Combine(_dir, "store-s390"));
        var e = await Assert.ThrowsAsync<ImagePullException>(() => s390.PullAsync($"{registry.Host}/multi:1"));
        Assert.Contains("no variant for linux/s390x", e.Message, StringComparison.Ordinal);
        Assert.Contains("linux/amd64", e.Message, StringComparison.Ordinal);
        Assert.Equal(registry.Host, e.Registry);
        Assert.Empty(s390.List());
    }

    [Fact]
    public async Task Pull_BasicAuth_WithConfigJsonCredentials_AndWithout()
    {
        using var registry = LocalRegistry.Start(("tester", "s3cret"));
        registry.Push(Layout("v1", SampleImages.Layered()), "v1", "private:v1");
        var good = Convert.ToBase64String("tester:s3cret"u8.ToArray());
        using (var service = Service(new RegistryCredential(registry.Host, good)))
        {
            var image = await service.PullAsync($"{registry.Host}/private:v1");
            Assert.Equal(3, image.Layers.Count);
        }

        using (var anonymous = Service(store: Path.Combine(_dir, "anon")))
        {
            var e = await Assert.ThrowsAsync<ImagePullException>(() => anonymous.PullAsync($"{registry.Host}/private:v1"));
            Assert.Contains("none is configured", e.Message, StringComparison.Ordinal);
            Assert.Contains(registry.Host, e.Message, StringComparison.Ordinal);
        }

        var bad = Convert.ToBase64String("tester:wrong"u8.ToArray());
        using var wrong = Service(new RegistryCredential(registry.Host, bad), store: Path.Combine(_dir, "wrong"));
        var denied = await Assert.ThrowsAsync<ImagePullException>(() => wrong.PullAsync($"{registry.Host}/private:v1"));
        Assert.Contains("HTTP 401", denied.Message, StringComparison.Ordinal);
        Assert.Contains("private", denied.Image, StringComparison.Ordinal);
        Assert.Empty(wrong.List());
    }

    [Fact]
    public async Task Pull_UnknownImageOrTag_NamesTheReferenceAndTheRegistrysWords()
    {
        using var registry = LocalRegistry.Start();
        registry.Push(Layout("v1", SampleImages.Layered()), "v1", "known:v1");
        using var service = Service();
        var tag = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/known:v2"));
        Assert.Contains("HTTP 404", tag.Message, StringComparison.Ordinal);
        Assert.Contains("MANIFEST_UNKNOWN", tag.Message, StringComparison.Ordinal);
        Assert.Contains($"{registry.Host}/known:v2", tag.Message, StringComparison.Ordinal);
        var repo = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/unknown:v1"));
        Assert.Contains("MANIFEST_UNKNOWN: manifest unknown", repo.Message, StringComparison.Ordinal); // distribution 2.8 says so for an unknown repository too
        var never = await Assert.ThrowsAsync<ImagePullException>(() => service.ResolveAsync($"{registry.Host}/known:v1", ImagePullPolicy.Never));
        Assert.Contains("pull policy is Never", never.Message, StringComparison.Ordinal);
        Assert.Empty(service.List());
    }

    [Fact]
    public async Task Pull_RegistryDown_SaysSoAfterRetries()
    {
        using var service = Service();
        var port = LocalRegistry.FreePort();
        var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"127.0.0.1:{port}/app:1"));
        Assert.Contains("refuses connections", e.Message, StringComparison.Ordinal);
        Assert.Contains("gave up after retries", e.Message, StringComparison.Ordinal);
        Assert.Equal($"127.0.0.1:{port}", e.Registry);
    }

    [Fact]
    public async Task Pull_CorruptedBlob_IsRefusedAndNothingStays()
    {
        using var registry = LocalRegistry.Start();
        var image = SampleImages.Layered();
        var layout = Layout("v1", image);
        registry.Push(layout, "v1", "corrupt:v1");
        // The registry serves other bytes under the first layer's digest.
        var layerDigest = OciLayout.Digest(LayerBuilder.Compress(image.Layers[0].Tar, image.Layers[0].Compression));
        var size = new FileInfo(Path.Combine(layout, "blobs", "sha256", layerDigest["sha256:".Length..])).Length;
        registry.CorruptBlob(layerDigest, new byte[size]);
        using var service = Service();
        var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/corrupt:v1"));
        Assert.Contains($"hashes to", e.Message, StringComparison.Ordinal);
        Assert.Contains(layerDigest, e.Message, StringComparison.Ordinal);
        Assert.False(service.Store.HasBlob(layerDigest));
        Assert.Empty(service.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(service.Store.Root, "tmp")));
    }

    [Fact]
    public async Task Pull_MaliciousLayer_IsAnUnpackErrorAndLeavesNoLayer()
    {
        using var registry = LocalRegistry.Start();
        var evil = new TestImage([(new LayerBuilder().File("ok", "1").File("../../escape", "x").Tar(), Compression.Gzip)]);
        registry.Push(Layout("v1", evil), "v1", "evil:v1");
        using var service = Service();
        var e = await Assert.ThrowsAsync<ImageUnpackException>(() => service.PullAsync($"{registry.Host}/evil:v1"));
        Assert.Contains("climbs out", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("sha256:", e.Layer, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateDirectories(service.Store.LayerDirectory));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(service.Store.Root, "tmp")));
        Assert.Empty(service.List());
    }

    [Fact]
    public async Task Prune_RemovesWhatNoTagReaches_KeepsHeldLayers()
    {
        using var registry = LocalRegistry.Start();
        registry.Push(Layout("a", SampleImages.Layered(marker: "a")), "a", "prune:a");
        registry.Push(Layout("b", SampleImages.Layered(marker: "b")), "b", "prune:b");
        using var service = Service();
        var a = await service.PullAsync($"{registry.Host}/prune:a");
        var b = await service.PullAsync($"{registry.Host}/prune:b");
        Assert.Equal(2, service.List().Count);
        Assert.Equal(a.Layers[1].DiffId, b.Layers[1].DiffId); // shared layers are stored once
        Assert.Equal(0, service.Prune().Layers);

        Assert.True(service.Remove($"{registry.Host}/prune:a"));
        Assert.False(service.Remove($"{registry.Host}/prune:a"));
        using (service.Store.HoldLayers(a.Layers))
        {
            var held = service.Prune();
            Assert.Equal(0, held.Layers);       // a's own first layer is held by a "container"
            Assert.True(held.Blobs >= 2);       // its manifest, config and first layer blob go
        }

        var result = service.Prune();
        Assert.Equal(1, result.Layers);
        Assert.False(Directory.Exists(a.Layers[0].Directory));
        Assert.True(Directory.Exists(b.Layers[0].Directory));
        Assert.NotNull(service.Store.Find(ImageReference.Parse($"{registry.Host}/prune:b")));
        Assert.False(Path.Exists(a.Layers[0].ShortLink));
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
