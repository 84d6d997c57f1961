using System.Diagnostics;
using System.Formats.Tar;
using IsoTest.TestSupport;

namespace IsoTest.Server.Tests;

/// <summary>
/// Images through `isotest serve` with the real docker CLI: import, tag, rmi, prune, pull from a real
/// registry (Debian's docker-registry, filled by skopeo from the local dockerd), and load of a real
/// dockerd's `docker save`. The server has an image store of its own (<see cref="ServerFixture"/>).
/// </summary>
public sealed class DockerCliImageTests(ServerFixture server) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-server-images-").FullName;
    private readonly List<string> _dockerdImages = [];

    [Fact]
    public async Task Import_WithChanges_RunsWithTheImagesDefaults()
    {
        var tar = BusyboxTar();
        var (code, id, stderr) = await server.DockerAsync("import",
            "--change", "ENV GREETING=hello-from-import", "--change", "WORKDIR /data", "--change", "LABEL suite=images",
            "--change", "EXPOSE 8080", "--change", """CMD ["sh", "-c", "echo $GREETING in $(pwd)"]""", tar, "srv-import:1");
        Assert.True(code == 0, stderr);
        Assert.Matches("^sha256:[0-9a-f]{64}$", id.Trim());

        var (_, inspect, _) = await server.DockerAsync("image", "inspect", "--format",
            "{{.Id}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{index .Config.Labels \"suite\"}} {{json .Config.ExposedPorts}} {{len .RootFS.Layers}}", "srv-import:1");
        Assert.Equal($"{id.Trim()} [\"sh\",\"-c\",\"echo $GREETING in $(pwd)\"] /data images {{\"8080/tcp\":{{}}}} 1", inspect.Trim());

        var (runCode, output, runErr) = await server.DockerAsync("run", "--rm", "srv-import:1");
        Assert.True(runCode == 0, runErr);
        Assert.Equal("hello-from-import in /data\n", output);

        // A command given at run replaces the image's CMD; its ENV stays.
        (runCode, output, runErr) = await server.DockerAsync("run", "--rm", "srv-import:1", "sh", "-c", "echo $GREETING; ls /bin/busybox");
        Assert.True(runCode == 0, runErr);
        Assert.Equal("hello-from-import\n/bin/busybox\n", output);

        var (_, images, _) = await server.DockerAsync("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}");
        Assert.Contains($"srv-import:1 {id.Trim()["sha256:".Length..][..12]}", images);
    }

    [Fact]
    public async Task Import_AnInstructionDockerdRefuses_NamesIt()
    {
        var (code, _, stderr) = await server.DockerAsync("import", "--change", "RUN echo no", BusyboxTar(), "srv-bad:1");
        Assert.NotEqual(0, code);
        Assert.Contains("RUN is not allowed in an import", stderr);
        var (_, images, _) = await server.DockerAsync("images", "--format", "{{.Repository}}");
        Assert.DoesNotContain("srv-bad", images);
    }

    [Fact]
    public async Task TagAndRmi_UntagNamesThenDeleteTheImage()
    {
        var (code, id, stderr) = await server.DockerAsync("import", BusyboxTar(), "srv-tag:1");
        Assert.True(code == 0, stderr);
        Assert.Equal(0, (await server.DockerAsync("tag", "srv-tag:1", "example.com/team/srv-tag:2")).ExitCode);

        var (_, both, _) = await server.DockerAsync("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}");
        var shortId = id.Trim()["sha256:".Length..][..12];
        Assert.Contains($"srv-tag:1 {shortId}", both);
        Assert.Contains($"example.com/team/srv-tag:2 {shortId}", both);

        var (_, untagged, _) = await server.DockerAsync("rmi", "srv-tag:1");
        Assert.Equal("Untagged: srv-tag:1", untagged.Trim());
        var (runCode, output, runErr) = await server.DockerAsync("run", "--rm", "example.com/team/srv-tag:2", "echo", "still here");
        Assert.True(runCode == 0, runErr);
        Assert.Equal("still here\n", output);

        var (_, deleted, _) = await server.DockerAsync("rmi", "example.com/team/srv-tag:2");
        Assert.Equal($"Untagged: example.com/team/srv-tag:2\nDeleted: {id.Trim()}", deleted.Trim());
        var (inspectCode, _, missing) = await server.DockerAsync("image", "inspect", shortId);
        Assert.NotEqual(0, inspectCode);
        Assert.Contains("No such image", missing);

        // What the removed image held is reclaimed by a prune.
        var blobs = Path.Combine(server.ImageStore, "blobs", "sha256");
        var before = Directory.GetFiles(blobs).Length;
        var (pruneCode, pruned, pruneErr) = await server.DockerAsync("image", "prune", "-a", "-f");
        Assert.True(pruneCode == 0, pruneErr);
        Assert.Contains("Total reclaimed space", pruned);
        Assert.True(Directory.GetFiles(blobs).Length < before, $"prune left {Directory.GetFiles(blobs).Length} of {before} blobs");
    }

    [Fact]
    public async Task Rmi_WhileAContainerUsesIt_IsRefusedUnlessForced()
    {
        Assert.Equal(0, (await server.DockerAsync("import", BusyboxTar(), "srv-busy:1")).ExitCode);
        var name = $"busy-{Guid.NewGuid():N}";
        var (code, _, stderr) = await server.DockerAsync("run", "-d", "--name", name, "srv-busy:1", "sleep", "600");
        Assert.True(code == 0, stderr);
        try
        {
            var (rmiCode, _, refused) = await server.DockerAsync("rmi", "srv-busy:1");
            Assert.NotEqual(0, rmiCode);
            Assert.Contains("is using its referenced image", refused);
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
        }

        Assert.Equal(0, (await server.DockerAsync("rmi", "srv-busy:1")).ExitCode);
    }

    [Fact]
    public async Task Pull_FromARealRegistry_ThenRuns()
    {
        using var registry = LocalRegistry.Start();
        var source = await ImportIntoDockerdAsync("isotest-server-tests/pull:1");
        LocalRegistry.Run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"docker-daemon:{source}", $"docker://{registry.Host}/srv/busybox:1");

        var image = $"{registry.Host}/srv/busybox:1";
        var (code, pulled, stderr) = await server.DockerAsync("pull", image);
        Assert.True(code == 0, stderr);
        Assert.Contains($"Status: Downloaded newer image for {image}", pulled);
        (code, pulled, stderr) = await server.DockerAsync("pull", image);
        Assert.True(code == 0, stderr);
        Assert.Contains($"Status: Image is up to date for {image}", pulled);

        var (runCode, output, runErr) = await server.DockerAsync("run", "--rm", image, "sh", "-c", "echo pulled; cat /marker");
        Assert.True(runCode == 0, runErr);
        Assert.Equal("pulled\nbusybox rootfs\n", output);

        // An unknown tag is the registry's "manifest unknown", named, and leaves no image.
        var (missingCode, _, missing) = await server.DockerAsync("pull", $"{registry.Host}/srv/busybox:nope");
        Assert.NotEqual(0, missingCode);
        Assert.Contains("srv/busybox:nope", missing);
    }

    [Fact]
    public async Task Load_ADockerSaveArchiveOfDockerd_ThenRuns()
    {
        var source = await ImportIntoDockerdAsync("isotest-server-tests/save:1");
        var archive = Path.Combine(_dir, "saved.tar");
        await HostDockerAsync("save", "-o", archive, source);

        var (code, loaded, stderr) = await server.DockerWithInputAsync(archive, "load");
        Assert.True(code == 0, stderr);
        Assert.Contains($"Loaded image: {source}", loaded);
        var (runCode, output, runErr) = await server.DockerAsync("run", "--rm", source, "cat", "/marker");
        Assert.True(runCode == 0, runErr);
        Assert.Equal("busybox rootfs\n", output);
    }

    public void Dispose()
    {
        foreach (var image in _dockerdImages)
        {
            _ = HostDockerAsync("rmi", "-f", image).ContinueWith(_ => { }, TaskScheduler.Default).Wait(TimeSpan.FromSeconds(30));
        }

        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A root filesystem tar of the static busybox with its applets as symlinks, a /data directory and a marker file.</summary>
    private string BusyboxTar()
    {
        var root = Path.Combine(_dir, $"rootfs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        Directory.CreateDirectory(Path.Combine(root, "data"));
        File.Copy(File.Exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox", Path.Combine(root, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "echo", "cat", "ls", "sleep", "pwd", "true" })
        {
            File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
        }

        File.WriteAllText(Path.Combine(root, "marker"), "busybox rootfs\n");
        var tar = root + ".tar";
        TarFile.CreateFromDirectory(root, tar, includeBaseDirectory: false);
        return tar;
    }

    /// <summary>The same rootfs imported into the machine's own dockerd (removed on dispose).</summary>
    private async Task<string> ImportIntoDockerdAsync(string name)
    {
        await HostDockerAsync("import", "--change", "ENV PATH=/bin", BusyboxTar(), name);
        _dockerdImages.Add(name);
        return name;
    }

    /// <summary>The docker CLI against the machine's dockerd (API 1.41).</summary>
    private static async Task HostDockerAsync(params string[] args)
    {
        var docker = File.Exists("/usr/local/bin/docker") ? "/usr/local/bin/docker" : "docker";
        var info = new ProcessStartInfo(docker, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["DOCKER_API_VERSION"] = "1.41";
        info.Environment.Remove("DOCKER_HOST");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker {string.Join(' ', args)} (dockerd) exited {process.ExitCode}: {stderr}{await stdout}");
        }
    }
}
