using System.Formats.Tar;

namespace IsoTest.Server.Tests;

/// <summary>
/// `docker cp` both ways through `isotest serve` with the real docker CLI, and the archive API's refusals:
/// entries that climb out of the target directory, symlinks that point at the host's paths, missing paths and
/// containers that no longer run. Nothing of a refused archive is written.
/// </summary>
public sealed class DockerCliCopyTests(ServerFixture server) : IClassFixture<ServerFixture>, IDisposable
{
    private const string Image = "isotest/host";

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-server-cp-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<string> RunningAsync()
    {
        var name = $"cp-{Guid.NewGuid():N}"[..15];
        var (code, _, stderr) = await server.DockerAsync("run", "-d", "--name", name, Image, "sleep", "600");
        Assert.True(code == 0, stderr);
        return name;
    }

    [Fact]
    public async Task Cp_FileAndDirectoryIn_ThenBackOut_KeepsContentAndMode()
    {
        var name = await RunningAsync();
        try
        {
            var file = Path.Combine(_dir, "greeting.txt");
            await File.WriteAllTextAsync(file, "hello through cp\n");
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead);
            var tree = Directory.CreateDirectory(Path.Combine(_dir, "tree", "sub")).Parent!.FullName;
            await File.WriteAllTextAsync(Path.Combine(tree, "sub", "nested.txt"), "nested\n");

            var (code, _, stderr) = await server.DockerAsync("cp", file, $"{name}:/tmp/copied.txt");
            Assert.True(code == 0, stderr);
            (code, _, stderr) = await server.DockerAsync("cp", tree, $"{name}:/tmp/");
            Assert.True(code == 0, stderr);

            var (_, inside, _) = await server.DockerAsync("exec", name, "sh", "-c", "stat -c %a /tmp/copied.txt; cat /tmp/copied.txt /tmp/tree/sub/nested.txt");
            Assert.Equal("740\nhello through cp\nnested\n", inside);

            Assert.Equal(0, (await server.DockerAsync("exec", name, "sh", "-c", "mkdir -p /tmp/out/deeper && echo made-inside > /tmp/out/deeper/made.txt")).ExitCode);
            var back = Path.Combine(_dir, "back");
            (code, _, stderr) = await server.DockerAsync("cp", $"{name}:/tmp/out", back);
            Assert.True(code == 0, stderr);
            Assert.Equal("made-inside\n", await File.ReadAllTextAsync(Path.Combine(back, "deeper", "made.txt")));
            (code, _, stderr) = await server.DockerAsync("cp", $"{name}:/tmp/copied.txt", Path.Combine(_dir, "again.txt"));
            Assert.True(code == 0, stderr);
            Assert.Equal("hello through cp\n", await File.ReadAllTextAsync(Path.Combine(_dir, "again.txt")));
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
        }
    }

    [Fact]
    public async Task Cp_ThroughASymlinkToTheHostsRoot_StaysInsideTheContainer()
    {
        var name = await RunningAsync();
        var marker = $"isotest-cp-escape-{Guid.NewGuid():N}";
        try
        {
            // An absolute symlink made inside points at "/": resolved in the container's root, never the host's.
            Assert.Equal(0, (await server.DockerAsync("exec", name, "ln", "-s", "/", "/tmp/root-link")).ExitCode);
            var file = Path.Combine(_dir, marker);
            await File.WriteAllTextAsync(file, "stays inside\n");

            var (code, _, stderr) = await server.DockerAsync("cp", file, $"{name}:/tmp/root-link/run/{marker}");
            Assert.True(code == 0, stderr);

            Assert.False(File.Exists($"/run/{marker}"), "the copy went through the symlink to the host's /run");
            var (_, inside, _) = await server.DockerAsync("exec", name, "cat", $"/run/{marker}");
            Assert.Equal("stays inside\n", inside);

            var (outCode, _, outErr) = await server.DockerAsync("cp", $"{name}:/tmp/root-link/etc/hostname", Path.Combine(_dir, "hostname"));
            Assert.True(outCode == 0, outErr);
            Assert.Equal((await server.DockerAsync("exec", name, "cat", "/etc/hostname")).Stdout, await File.ReadAllTextAsync(Path.Combine(_dir, "hostname")));
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
            File.Delete($"/run/{marker}");
        }
    }

    [Fact]
    public async Task Cp_AnArchiveClimbingOut_IsRefusedAndWritesNothing()
    {
        var name = await RunningAsync();
        try
        {
            var archive = Path.Combine(_dir, "climb.tar");
            await using (var stream = File.Create(archive))
            {
                using var writer = new TarWriter(stream, TarEntryFormat.Pax);
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "first-is-fine.txt") { DataStream = new MemoryStream("ok\n"u8.ToArray()) });
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "../../../climbed.txt") { DataStream = new MemoryStream("out\n"u8.ToArray()) });
            }

            var (code, _, stderr) = await server.DockerWithInputAsync(archive, "cp", "-", $"{name}:/tmp");
            Assert.NotEqual(0, code);
            Assert.Contains("climbs out", stderr);
            Assert.Contains("must", stderr);

            var (_, left, _) = await server.DockerAsync("exec", name, "sh", "-c", "ls /tmp/first-is-fine.txt /climbed.txt /tmp/climbed.txt 2>/dev/null; echo end");
            Assert.Equal("end\n", left);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
        }
    }

    [Fact]
    public async Task Cp_MissingPathOrExitedContainer_SaysSo()
    {
        var name = await RunningAsync();
        try
        {
            var (code, _, stderr) = await server.DockerAsync("cp", $"{name}:/no/such/file", Path.Combine(_dir, "x"));
            Assert.NotEqual(0, code);
            Assert.Contains("Could not find the file /no/such/file", stderr);

            Assert.Equal(0, (await server.DockerAsync("stop", "-t", "0", name)).ExitCode);
            (code, _, stderr) = await server.DockerAsync("cp", $"{name}:/etc/hostname", Path.Combine(_dir, "y"));
            Assert.NotEqual(0, code);
            Assert.Contains("only while it is created or running", stderr);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
        }
    }
}
