namespace IsoTest.Engine.Native;

/// <summary>Maps errno to exceptions that keep errno and the operation.</summary>
internal static class Errors
{
    public static NativeException Native(string operation, int errno) => new(operation, errno);
}

/// <summary>A failed system call in the engine itself (not in a container).</summary>
internal sealed class NativeException(string operation, int errno)
    : Exception($"{operation} failed: {Libc.ErrnoText(errno)} (errno {errno})")
{
    public int Errno { get; } = errno;

    public string Operation { get; } = operation;
}
