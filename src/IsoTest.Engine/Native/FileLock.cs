using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// flock(2) on a lock file, between threads and processes alike (each hold is its own open file
/// description). The kernel drops a lock when its holder dies, even by kill -9, so no lock outlives a crash.
/// </summary>
internal sealed class FileLock : IDisposable
{
    private readonly SafeFileHandle _handle;

    private FileLock(SafeFileHandle handle) => _handle = handle;

    /// <summary>Waits for the exclusive lock, polling with backoff (a blocking flock would pin a thread and ignore cancellation).</summary>
    public static async Task<FileLock> AcquireAsync(string path, CancellationToken cancellationToken)
    {
        var delay = 5;
        while (true)
        {
            if (TryAcquire(path) is { } held)
            {
                return held;
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = Math.Min(delay * 2, 100);
        }
    }

    /// <summary>The exclusive lock, or null when another holder has it (shared or exclusive).</summary>
    public static FileLock? TryAcquire(string path) => Lock(path, Libc.LOCK_EX | Libc.LOCK_NB);

    /// <summary>A shared hold: many at once; an exclusive <see cref="TryAcquire"/> fails while any is held.</summary>
    public static FileLock Share(string path) => Lock(path, Libc.LOCK_SH) ?? throw new InvalidOperationException("blocking flock returned no lock");

    private static FileLock? Lock(string path, int operation)
    {
        var fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0x180 /* 0600 */);
        if (fd < 0)
        {
            throw Errors.Native($"open lock {path}", Libc.Errno);
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        while (Libc.flock(fd, operation) < 0)
        {
            var errno = Libc.Errno;
            if (errno == Libc.EINTR)
            {
                continue;
            }

            handle.Dispose();
            return errno == Libc.EAGAIN ? null : throw Errors.Native($"flock {path}", errno);
        }

        return new FileLock(handle);
    }

    public void Dispose() => _handle.Dispose();
}
