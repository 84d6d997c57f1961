using System.Globalization;
using System.Text.Json;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/containers/...: the container lifecycle as the docker CLI and Testcontainers drive it.</summary>
internal static class ContainerEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ContainerTable table)
    {
        app.MapPost("/containers/create", async (HttpContext context, string? name) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new CreateContainerRequest(), context.RequestAborted).ConfigureAwait(false);
            var container = await table.CreateAsync(request, name, context.RequestAborted).ConfigureAwait(false);
            return Results.Json(new Dictionary<string, object> { ["Id"] = container.Id, ["Warnings"] = Array.Empty<string>() }, ServerJson.Options, statusCode: StatusCodes.Status201Created);
        });

        app.MapGet("/containers/json", (HttpContext context, string? all, string? filters, int? limit) =>
        {
            var filter = ContainerFilter.Parse(filters);
            var list = table.All.Where(c => IsTrue(all) || c.Running).Where(filter.Matches);
            if (limit is > 0)
            {
                list = list.Take(limit.Value);
            }

            return Results.Json(list.Select(ContainerViews.Summary).ToList(), ServerJson.Options);
        });

        app.MapGet("/containers/{id}/json", (string id) => Results.Json(ContainerViews.Inspect(table.Find(id)), ServerJson.Options));

        app.MapPost("/containers/{id}/start", async (string id, HttpContext context) =>
        {
            var container = table.Find(id);
            if (container.Running)
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }

            await table.StartAsync(container, context.RequestAborted).ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/containers/{id}/stop", async (string id, int? t, HttpContext context) =>
        {
            var container = table.Find(id);
            if (!container.Running)
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }

            await container.Inner.StopAsync(t is { } seconds and >= 0 ? TimeSpan.FromSeconds(seconds) : null, context.RequestAborted).ConfigureAwait(false);
            await container.NextExitOrDone().ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/containers/{id}/restart", async (string id, int? t, HttpContext context) =>
        {
            var container = table.Find(id);
            if (container.Running)
            {
                await container.Inner.StopAsync(t is { } seconds and >= 0 ? TimeSpan.FromSeconds(seconds) : null, context.RequestAborted).ConfigureAwait(false);
                await container.NextExitOrDone().ConfigureAwait(false);
            }

            await table.StartAsync(container, context.RequestAborted).ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/containers/{id}/kill", async (string id, string? signal, HttpContext context) =>
        {
            var container = table.Find(id);
            if (!container.Running)
            {
                throw DockerApiException.Conflict($"Cannot kill container: {id}: Container {container.Id} is not running");
            }

            // The engine's public surface stops with SIGTERM then SIGKILL; KILL is a stop with no grace period.
            var grace = (signal ?? "SIGKILL").ToUpperInvariant() switch
            {
                "SIGKILL" or "KILL" or "9" => TimeSpan.Zero,
                "SIGTERM" or "TERM" or "15" => container.Inner.Spec.StopTimeout,
                var other => throw DockerApiException.BadRequest($"signal {other} cannot be sent by IsoTest's server yet: use SIGKILL or SIGTERM"),
            };
            await container.Inner.StopAsync(grace, context.RequestAborted).ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/containers/{id}/wait", async (string id, string? condition, HttpContext context) =>
        {
            var container = table.Find(id);
            // dockerd sends the headers as soon as the wait is registered: the docker CLI starts the
            // container only after it has them, so a fast exit cannot slip between wait and start.
            var wait = (condition ?? "not-running") switch
            {
                "next-exit" => container.NextExit,
                "removed" => container.Removed.ContinueWith(_ => container.Inner.ExitCode ?? 0, TaskScheduler.Default),
                "not-running" => container.ExitOfTheRunningRun(),
                var other => throw DockerApiException.BadRequest($"invalid condition: \"{other}\": use not-running, next-exit or removed"),
            };
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            var code = await wait.WaitAsync(context.RequestAborted).ConfigureAwait(false);
            await context.Response.WriteAsync(JsonSerializer.Serialize(new Dictionary<string, object?> { ["StatusCode"] = code, ["Error"] = null }, ServerJson.Options) + "\n", context.RequestAborted).ConfigureAwait(false);
        });

        app.MapDelete("/containers/{id}", async (string id, string? force) =>
        {
            var container = table.Find(id);
            if (container.Running && !IsTrue(force))
            {
                throw DockerApiException.Conflict($"You cannot remove a running container {container.Id}. Stop the container before attempting removal or force remove");
            }

            await table.RemoveAsync(container).ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/containers/{id}/rename", (string id, string? name) =>
        {
            table.Rename(table.Find(id), name ?? throw DockerApiException.BadRequest("rename needs ?name=NEW_NAME"));
            return Results.NoContent();
        });

        app.MapGet("/containers/{id}/logs", async (string id, HttpContext context) =>
        {
            var container = table.Find(id);
            var q = context.Request.Query;
            var (stdout, stderr) = (IsTrue(q["stdout"]), IsTrue(q["stderr"]));
            if (!stdout && !stderr)
            {
                throw DockerApiException.BadRequest("Bad parameters: you must choose at least one stream");
            }

            var timestamps = IsTrue(q["timestamps"]);
            var since = long.TryParse(((string?)q["since"] ?? "").Split('.')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) && s > 0 ? DateTimeOffset.FromUnixTimeSeconds(s) : (DateTimeOffset?)null;
            bool Wanted(LogLine l) => (l.Stream == LogStream.Stdout ? stdout : stderr) && (since is null || l.Timestamp >= since);

            context.Response.ContentType = StreamFrames.ContentType(ApiVersioning.Of(context));
            var snapshot = container.Inner.GetLogs();
            var tail = int.TryParse(q["tail"], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue;
            var past = snapshot.Where(Wanted).ToList();
            foreach (var line in past.Skip(Math.Max(0, past.Count - tail)))
            {
                await StreamFrames.WriteLineAsync(context.Response.Body, line, timestamps, context.RequestAborted).ConfigureAwait(false);
            }

            if (!IsTrue(q["follow"]))
            {
                return;
            }

            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            var skip = snapshot.Count;
            await foreach (var line in container.Inner.FollowLogsAsync(context.RequestAborted).ConfigureAwait(false))
            {
                if (skip-- > 0 || !Wanted(line))
                {
                    continue;
                }

                await StreamFrames.WriteLineAsync(context.Response.Body, line, timestamps, context.RequestAborted).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            }
        });

        app.MapPost("/containers/{id}/attach", async (string id, HttpContext context) =>
        {
            var handler = Attach(table.Find(id), new AttachOptions(IsTrue(context.Request.Query["stdin"]), IsTrue(context.Request.Query["stdout"]), IsTrue(context.Request.Query["stderr"]), IsTrue(context.Request.Query["logs"])));
            await handler(await Hijack.StartPlainAsync(context).ConfigureAwait(false), context.RequestAborted).ConfigureAwait(false);
        });

        // dockerd runs ps -ef on the host for the container's pids; these are the same columns from /proc.
        app.MapGet("/containers/{id}/top", (string id) =>
        {
            var container = table.Find(id);
            if (!container.Running)
            {
                throw DockerApiException.Conflict($"Container {container.Id} is not running");
            }

            var engine = container.Inner as IsoTest.Engine.Containers.EngineContainer
                ?? throw new DockerApiException(StatusCodes.Status501NotImplemented, $"top is served only for containers of the built-in engine; {container.Name} runs on another backend");
            var boot = BootTime();
            var processes = engine.Processes().Select(p => new[]
            {
                p.Uid.ToString(CultureInfo.InvariantCulture), p.Pid.ToString(CultureInfo.InvariantCulture), p.ParentPid.ToString(CultureInfo.InvariantCulture), "0",
                boot.AddSeconds(p.StartedAfterBoot).ToLocalTime().ToString("HH:mm", CultureInfo.InvariantCulture), "?",
                p.CpuTime.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture), p.Command,
            }).ToList();
            return Results.Json(new Dictionary<string, object?> { ["Titles"] = new[] { "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD" }, ["Processes"] = processes }, ServerJson.Options);
        });

        app.MapPost("/containers/prune", async (string? filters) =>
        {
            var labels = QueryFilters.Parse(filters, ["label", "until"]);
            var until = labels.GetValueOrDefault("until")?.FirstOrDefault() is { } u && long.TryParse(u, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
                ? DateTimeOffset.FromUnixTimeSeconds(seconds) : (DateTimeOffset?)null;
            var doomed = table.All
                .Where(c => !c.Running && (until is null || c.Created < until))
                .Where(c => !labels.TryGetValue("label", out var wanted) || QueryFilters.MatchesLabels(wanted, c.Inner.Spec.Labels))
                .ToList();
            foreach (var container in doomed)
            {
                await table.RemoveAsync(container).ConfigureAwait(false);
            }

            return Results.Json(new Dictionary<string, object?> { ["ContainersDeleted"] = doomed.Count == 0 ? null : doomed.Select(c => c.Id).ToList(), ["SpaceReclaimed"] = 0 }, ServerJson.Options);
        });

        app.MapGet("/containers/{id}/stats", async (string id, HttpContext context) =>
        {
            var container = table.Find(id);
            var stats = await container.Inner.GetStatsAsync(context.RequestAborted).ConfigureAwait(false);
            return Results.Json(new Dictionary<string, object?>
            {
                ["read"] = ContainerViews.Time(DateTimeOffset.UtcNow),
                ["id"] = container.Id,
                ["name"] = "/" + container.Name,
                ["memory_stats"] = new Dictionary<string, object?> { ["max_usage"] = stats.PeakMemoryBytes, ["limit"] = container.Inner.Spec.Limits.MemoryBytes },
                ["cpu_stats"] = new Dictionary<string, object?> { ["cpu_usage"] = new Dictionary<string, object?> { ["total_usage"] = (long)(stats.CpuTime.TotalMilliseconds * 1_000_000) } },
                ["pids_stats"] = new Dictionary<string, object?> { ["limit"] = container.Inner.Spec.Limits.Pids },
            }, ServerJson.Options);
        });
    }

    internal sealed record AttachOptions(bool Stdin, bool Stdout, bool Stderr, bool Logs);

    /// <summary>
    /// The output of an attach: with <c>logs=1</c> what was written so far first, then live until the
    /// container's output ends. Checked before anything is written, so a bad request gets a plain error.
    /// </summary>
    public static HijackHandler Attach(ServerContainer container, AttachOptions options)
    {
        if (options.Stdin)
        {
            throw DockerApiException.BadRequest("attaching stdin is not supported by IsoTest's server yet");
        }

        var skip = options.Logs ? 0 : container.Inner.GetLogs().Count;
        return async (stream, ended) =>
        {
            // The output also ends when the start fails (the command could not be executed), as on dockerd.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ended);
            _ = container.StartFailed.ContinueWith(
                _ =>
                {
                    try
                    {
                        stop.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // the attach already ended
                    }
                },
                CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            try
            {
                await foreach (var line in container.Inner.FollowLogsAsync(stop.Token).ConfigureAwait(false))
                {
                    if (skip-- > 0 || !(line.Stream == LogStream.Stdout ? options.Stdout : options.Stderr))
                    {
                        continue;
                    }

                    await StreamFrames.WriteLineAsync(stream, line, timestamps: false, ended).ConfigureAwait(false);
                    await stream.FlushAsync(ended).ConfigureAwait(false);
                }
            }
            catch (IOException)
            {
                // The client closed the connection: nobody is left to read the output.
            }
            catch (OperationCanceledException) when (!ended.IsCancellationRequested)
            {
                // The start failed: there will be no output.
            }
        };
    }

    /// <summary>When the host booted: /proc/stat's btime (seconds since the epoch).</summary>
    private static DateTimeOffset BootTime() =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(File.ReadLines("/proc/stat").First(l => l.StartsWith("btime ", StringComparison.Ordinal))[6..], CultureInfo.InvariantCulture));

    public static bool IsTrue(string? value) => value is "1" or "true" or "True" or "yes";

    private static Task NextExitOrDone(this ServerContainer container) =>
        container.Inner.State is ContainerState.Exited or ContainerState.Removed ? Task.CompletedTask : container.Inner.WaitForExitAsync();
}
