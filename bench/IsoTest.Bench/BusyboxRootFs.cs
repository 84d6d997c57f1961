namespace IsoTest.Bench;

/// <summary>
/// A busybox root filesystem on disk, built like .ci/docker-setup.sh builds the isotest/busybox image
/// (the same static busybox binary), plus /www/index.html: the engine's FromDirectory runs the same
/// httpd as the Docker-based peers.
/// </summary>
internal sealed class BusyboxRootFs : IDisposable
{
    public const string Index = "<html><body>isotest bench</body></html>\n";

    private BusyboxRootFs(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public static async Task<BusyboxRootFs> CreateAsync(CancellationToken cancellationToken)
    {
        var busybox = new[] { "/bin/busybox", "/usr/bin/busybox" }.FirstOrDefault(File.Exists)
            ?? throw new Peers.PeerUnavailableException("busybox is not installed: apt-get install busybox-static");
        var root = Directory.CreateTempSubdirectory("isotest-bench-rootfs-").FullName;
        var rootfs = new BusyboxRootFs(root);
        try
        {
            foreach (var dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root", "www" })
            {
                Directory.CreateDirectory(System.IO.Path.Combine(root, dir));
            }

            File.SetUnixFileMode(System.IO.Path.Combine(root, "tmp"), (UnixFileMode)0b1_111_111_111);
            File.Copy(busybox, System.IO.Path.Combine(root, "bin", "busybox"));
            var install = await Shell.RunAsync("chroot", [root, "/bin/busybox", "--install", "-s"], cancellationToken: cancellationToken);
            if (install.ExitCode != 0)
            {
                throw new Peers.PeerUnavailableException($"could not install busybox's links in {root} (needs root): {install.Tail}");
            }

            await File.WriteAllTextAsync(System.IO.Path.Combine(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", cancellationToken);
            await File.WriteAllTextAsync(System.IO.Path.Combine(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n", cancellationToken);
            await File.WriteAllTextAsync(System.IO.Path.Combine(root, "www", "index.html"), Index, cancellationToken);
            return rootfs;
        }
        catch
        {
            rootfs.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
