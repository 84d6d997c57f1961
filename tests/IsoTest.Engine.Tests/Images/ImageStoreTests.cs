using System.Diagnostics;
using System.Text.Json.Nodes;
using IsoTest.Engine.Images;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

public sealed class ImageStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-store-").FullName;

    public void Dispose() => ImageStore.RemoveTree(_dir);

    private static string OwnerDll => Path.Combine(
        AppContext.BaseDirectory.Replace("IsoTest.Engine.Tests", "IsoTest.Engine.Tests.Owner", StringComparison.Ordinal), "IsoTest.Engine.Tests.Owner.dll");

    private static System.Diagnostics.Process StartPull(string store, string reference, bool hang = false) =>
        System.Diagnostics.Process.Start(new ProcessStartInfo("dotnet", ["exec", OwnerDll, "pull", store, reference, hang ? "hang" : "run"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;

    /// <summary>An image with one large incompressible layer, so a pull takes a while.</summary>
    private static TestImage Big()
    {
        var noise = new byte[24 << 20];
        Random.Shared.NextBytes(noise);
        return new TestImage([
            (new LayerBuilder().Bytes("noise", noise).Tar(), Compression.Gzip),
            (new LayerBuilder().File("small", "s").Tar(), Compression.Gzip),
        ]);
    }

    [Fact]
    public async Task ConcurrentPulls_FromSeveralProcesses_DownloadAndUnpackEachLayerOnce()
    {
        using var registry = LocalRegistry.Start();
        var layout = Path.Combine(_dir, "layout");
        OciLayout.Write(layout, "v1", Big());
        registry.Push(layout, "v1", "big:v1");
        var store = Path.Combine(_dir, "store");
        var pullers = Enumerable.Range(0, 4).Select(_ => StartPull(store, $"{registry.Host}/big:v1")).ToList();
        var outputs = new List<string>();
        foreach (var p in pullers)
        {
            var stdout = await p.StandardOutput.ReadToEndAsync();
            var stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, stdout + stderr);
            outputs.Add(stdout.Trim());
            p.Dispose();
        }

        // Every process got the same image; between them each layer was downloaded and unpacked once.
        Assert.Single(outputs.Select(o => o.Split(' ')[1]).Distinct());
        Assert.Equal(2, outputs.Sum(o => int.Parse(o.Split("downloaded=")[1].Split(' ')[0])));
        Assert.Equal(2, outputs.Sum(o => int.Parse(o.Split("unpacked=")[1])));
        var service = new ImageStore(store);
        Assert.Single(service.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(store, "tmp")));
    }

    [Fact]
    public async Task KillMidPull_LeavesNothingThatLooksComplete_AndTheNextPullSucceeds()
    {
        using var registry = LocalRegistry.Start();
        var layout = Path.Combine(_dir, "layout");
        OciLayout.Write(layout, "v1", Big());
        registry.Push(layout, "v1", "big:v1");
        var store = Path.Combine(_dir, "store");
        using (var victim = StartPull(store, $"{registry.Host}/big:v1", hang: true))
        {
            var line = await victim.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120));
            Assert.Equal("downloading", line);
            victim.Kill(); // SIGKILL
            await victim.WaitForExitAsync();
        }

        var reference = ImageReference.Parse($"{registry.Host}/big:v1");
        var after = new ImageStore(store);
        Assert.Null(after.Find(reference));
        Assert.Empty(after.List());
        Assert.Empty(Directory.EnumerateDirectories(after.LayerDirectory));
        Assert.NotEmpty(Directory.EnumerateFileSystemEntries(Path.Combine(store, "tmp"))); // the partial download, under no final name

        // The dead puller's lock went with it: a new pull is not blocked and completes.
        using var service = new ImageService(after, DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []), new Platform("amd64", "linux"));
        var image = await service.PullAsync(reference.ToString()).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(2, image.Layers.Count);
        after.Prune();
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(store, "tmp")));
        Assert.NotNull(after.Find(reference));
    }

    [Fact]
    public async Task Import_OciLayout_DirectoryAndTar()
    {
        var layout = Path.Combine(_dir, "layout");
        OciLayout.Write(layout, "1.0", SampleImages.Layered());
        var tar = Path.Combine(_dir, "layout.tar");
        OciLayout.TarDirectory(layout, tar);
        using var service = new ImageService(new ImageStore(Path.Combine(_dir, "store")), DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []), new Platform("amd64", "linux"));
        var fromDir = Assert.Single(await service.ImportAsync(layout));
        Assert.Equal("isotest.local/import:1.0", fromDir.Reference.ToString());
        Assert.Equal(3, fromDir.Layers.Count);
        var fromTar = Assert.Single(await service.ImportAsync(tar));
        Assert.Equal(fromDir.ManifestDigest, fromTar.ManifestDigest);
        Assert.Equal("new", File.ReadAllText(Path.Combine(fromTar.Layers[1].Directory, "data/new")));
    }

    [Fact]
    public async Task Import_DockerSaveArchive_FromTheRealDockerCli()
    {
        if (IsoTest.Engine.Native.Libc.geteuid() != 0)
        {
            // The daemon's socket is root's: rootless, the same format comes from skopeo's docker-archive writer.
            await Import_DockerSaveArchive_FromSkopeo();
            return;
        }

        var archive = Path.Combine(_dir, "saved.tar");
        LocalRegistry.Run("docker", "save", "-o", archive, "isotest/busybox:latest");
        using var service = new ImageService(new ImageStore(Path.Combine(_dir, "store")), DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []));
        var image = Assert.Single(await service.ImportAsync(archive));
        Assert.Equal("docker.io/isotest/busybox:latest", image.Reference.ToString());
        var busybox = image.Layers.Select(l => Path.Combine(l.Directory, "bin/busybox")).FirstOrDefault(File.Exists);
        Assert.NotNull(busybox);
        Assert.NotNull(service.Store.Find(ImageReference.Parse("isotest/busybox:latest")));

        // docker inspect's id is the config digest, the same image on both sides.
        using var inspect = System.Diagnostics.Process.Start(new ProcessStartInfo("docker", ["image", "inspect", "-f", "{{.Id}}", "isotest/busybox:latest"]) { RedirectStandardOutput = true })!;
        var id = (await inspect.StandardOutput.ReadToEndAsync()).Trim();
        await inspect.WaitForExitAsync();
        Assert.Equal(id, image.ConfigDigest);
    }

    [Fact]
    public async Task Import_DockerSaveArchive_FromSkopeo()
    {
        var layout = Path.Combine(_dir, "layout-skopeo");
        OciLayout.Write(layout, "v1", SampleImages.Layered(second: Compression.Gzip)); // Docker's format has no zstd
        var archive = Path.Combine(_dir, "skopeo-saved.tar");
        LocalRegistry.Run("skopeo", "copy", "--quiet", $"oci:{layout}:v1", $"docker-archive:{archive}:example.com/team/saved:v1");
        using var service = new ImageService(new ImageStore(Path.Combine(_dir, "store-skopeo")), DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []));
        var image = Assert.Single(await service.ImportAsync(archive));
        Assert.Equal("example.com/team/saved:v1", image.Reference.ToString());
        Assert.Equal(3, image.Layers.Count);
        Assert.Equal("new", File.ReadAllText(Path.Combine(image.Layers[1].Directory, "data/new")));
        Assert.Equal('c', FsProbe.Type(Path.Combine(image.Layers[1].Directory, "etc/gone")));
    }

    [Fact]
    public async Task Import_BadArchives_SayWhatIsWrong()
    {
        using var service = new ImageService(new ImageStore(Path.Combine(_dir, "store")), DockerCredentials.None, new RegistrySettings(new HashSet<string>(), []));
        var missing = await Assert.ThrowsAsync<ImagePullException>(() => service.ImportAsync(Path.Combine(_dir, "nope.tar")));
        Assert.Contains("no such file", missing.Message, StringComparison.Ordinal);
        var empty = Path.Combine(_dir, "empty");
        Directory.CreateDirectory(empty);
        var neither = await Assert.ThrowsAsync<ImagePullException>(() => service.ImportAsync(empty));
        Assert.Contains("neither manifest.json", neither.Message, StringComparison.Ordinal);

        // A layout whose blob was altered after it was named.
        var layout = Path.Combine(_dir, "layout");
        OciLayout.Write(layout, "1", SampleImages.Layered());
        var blob = Directory.EnumerateFiles(Path.Combine(layout, "blobs", "sha256")).OrderByDescending(f => new FileInfo(f).Length).First();
        File.AppendAllText(blob, "tampered");
        var tampered = await Assert.ThrowsAsync<ImagePullException>(() => service.ImportAsync(layout));
        Assert.Contains("hashes to", tampered.Message, StringComparison.Ordinal);
        Assert.Empty(service.List());
        _ = JsonNode.Parse("{}");
    }
}
