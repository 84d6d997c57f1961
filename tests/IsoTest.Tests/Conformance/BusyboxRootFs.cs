using System.Diagnostics;

namespace IsoTest.Tests.Conformance;

/// <summary>
/// A minimal root filesystem both backends can run: the host's static busybox, its applets as
/// symlinks, <c>/etc/passwd</c> with root and nobody, <c>/tmp</c> 1777. Built in a fresh temp
/// directory (so a rootless run can make it too) and removed by <see cref="Dispose"/>.
/// </summary>
public sealed class BusyboxRootFs : IDisposable
{
    private const string Busybox = "/bin/busybox";

    public BusyboxRootFs()
    {
        if (!File.Exists(Busybox))
        {
            throw new InvalidOperationException($"The conformance tests need a static busybox at {Busybox}: apt-get install busybox-static.");
        }

        Path = Directory.CreateTempSubdirectory("isotest-conformance-rootfs-").FullName;
        try
        {
            Populate(Path);
        }
        catch
        {
            Directory.Delete(Path, recursive: true);
            throw;
        }
    }

    /// <summary>The directory to pass to <c>FromDirectory</c>.</summary>
    public string Path { get; }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }

    private static void Populate(string root)
    {
        const UnixFileMode Dir755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

        // CreateTempSubdirectory makes 0700; as the container's "/" that would lock out every user but root.
        File.SetUnixFileMode(root, Dir755);
        foreach (var dir in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "home", "tmp" })
        {
            Directory.CreateDirectory(System.IO.Path.Combine(root, dir));
        }

        File.SetUnixFileMode(System.IO.Path.Combine(root, "tmp"), Dir755 | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.StickyBit);
        File.Copy(Busybox, System.IO.Path.Combine(root, "bin", "busybox"));

        // `busybox --install -s` would need a chroot to point the links at the rootfs' own busybox;
        // absolute links to /bin/busybox resolve inside the container either way.
        foreach (var applet in ListApplets())
        {
            var link = System.IO.Path.Combine(root, applet);
            if (applet != "bin/busybox" && !System.IO.Path.Exists(link))
            {
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(link)!);
                File.CreateSymbolicLink(link, Busybox);
            }
        }

        File.WriteAllText(System.IO.Path.Combine(root, "etc", "passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        File.WriteAllText(System.IO.Path.Combine(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    }

    private static List<string> ListApplets()
    {
        var start = new ProcessStartInfo(Busybox, "--list-full") { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"`{Busybox} --list-full` failed with exit code {process.ExitCode}.");
        }

        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }
}
