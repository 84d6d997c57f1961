namespace IsoTest.Engine.Native;

/// <summary>Maps errno to exceptions that keep errno and the operation.</summary>
internal static class Errors
{
    public static NativeException Native(string operation, int errno) => new(operation, errno);

    /// <summary>A helper process the engine talks to is gone (ESRCH).</summary>
    public static NativeException ProcessGone(string operation) => new(operation, Libc.ESRCH);

    /// <summary>A helper process answered something the protocol does not allow (EPROTO; 71 on every Linux architecture .NET runs on).</summary>
    public static NativeException ProtocolError(string operation) => new(operation, 71);

    /// <summary>A helper process did not answer in time (ETIMEDOUT; 110 on every Linux architecture .NET runs on).</summary>
    public static NativeException TimedOut(string operation) => new(operation, 110);
}

/// <summary>A failed system call in the engine itself (not in a container).</summary>
internal sealed class NativeException(string operation, int errno)
    : Exception($"{operation} failed: {Libc.ErrnoText(errno)} (errno {errno})")
{
    public int Errno { get; } = errno;

    public string Operation { get; } = operation;
}
