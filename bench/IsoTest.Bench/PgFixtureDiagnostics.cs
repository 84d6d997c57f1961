using System.Diagnostics;
using System.Globalization;
using System.Text;
using Npgsql;

namespace IsoTest.Bench;

/// <summary>
/// Not a benchmark: where one PostgreSQL fixture's time goes (`diag-pg`), to explain the suite's figure.
/// Serial fixtures, Stopwatch around each step, with the template's WAL segment at initdb's default
/// (16 MiB, copied up whole by overlayfs on the first write) and at 1 MiB.
/// </summary>
internal static class PgFixtureDiagnostics
{
    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var count = options.Quick ? 10 : 40;
        var s = new StringBuilder();
        s.AppendLine("## diag-pg: one PostgreSQL fixture, step by step (serial)");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture, $"{count} fixtures per variant, load average {Load.Now()} at start. Milliseconds.");
        s.AppendLine();
        s.AppendLine("| variant | step | median | p90 | min – max |");
        s.AppendLine("| --- | --- | ---: | ---: | ---: |");
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        foreach (var walMiB in new[] { 16, 1 })
        {
            var work = Directory.CreateTempSubdirectory("isotest-bench-pgdiag-");
            try
            {
                var template = Directory.CreateDirectory(Path.Combine(work.FullName, "template"));
                template.UnixFileMode = (UnixFileMode)Convert.ToInt32("1777", 8);
                work.UnixFileMode = (UnixFileMode)Convert.ToInt32("0755", 8);
                await using (var initdb = await new ContainerBuilder().FromHost().WithUser("postgres")
                    .WithBindMount(template.FullName, "/template")
                    .WithCommand("/usr/local/bin/initdb", "-D", "/template/data", "--username=postgres", "--auth=trust", "--locale=C", "--no-sync", $"--wal-segsize={walMiB}")
                    .WithBackend(backend).StartAsync(cancellationToken))
                {
                    if (await initdb.WaitForExitAsync(cancellationToken) != 0)
                    {
                        throw new InvalidOperationException(string.Join('\n', initdb.GetLogs()));
                    }
                }

                template.UnixFileMode = (UnixFileMode)Convert.ToInt32("0755", 8);
                var builder = new ContainerBuilder().FromHost().WithUser("postgres")
                    .WithCopyOnWriteMount(template.FullName, "/var/lib/postgresql")
                    .WithCommand("/usr/local/bin/postgres", "-D", "/var/lib/postgresql/data", "-k", "/tmp", "-p", "5432", "-c", "listen_addresses=127.0.0.1",
                        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB")
                    .WithMemoryLimit("256m").WithCpuLimit(1).WithPort(5432)
                    .WaitFor(Wait.ForLogMessage("database system is ready to accept connections"))
                    .WithBackend(backend);
                var steps = new Dictionary<string, List<double>> { ["StartAsync (ready log line)"] = [], ["open connection (type loading)"] = [], ["open connection (NoTypeLoading)"] = [], ["test's 3 statements"] = [], ["dispose"] = [] };
                for (var i = 0; i < count + 2; i++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var pg = await builder.StartAsync(cancellationToken);
                    var t1 = Stopwatch.GetTimestamp();
                    var endpoint = pg.GetEndpoint(5432);
                    var cs = $"Host={endpoint.Host};Port={endpoint.Port};Username=postgres;Database=postgres;Pooling=false";
                    await using (var plain = new NpgsqlConnection(cs))
                    {
                        await plain.OpenAsync(cancellationToken);
                    }

                    var t2 = Stopwatch.GetTimestamp();
                    await using var db = NpgsqlDataSource.Create(cs + ";Server Compatibility Mode=NoTypeLoading");
                    await using var conn = await db.OpenConnectionAsync(cancellationToken);
                    var t3 = Stopwatch.GetTimestamp();
                    await new NpgsqlCommand("CREATE TABLE p (id serial PRIMARY KEY, name text NOT NULL, price numeric NOT NULL)", conn).ExecuteNonQueryAsync(cancellationToken);
                    await new NpgsqlCommand("INSERT INTO p (name, price) VALUES ('tea', 3.50), ('coffee', 4)", conn).ExecuteNonQueryAsync(cancellationToken);
                    await new NpgsqlCommand("SELECT sum(price) FROM p", conn).ExecuteScalarAsync(cancellationToken);
                    var t4 = Stopwatch.GetTimestamp();
                    await conn.DisposeAsync();
                    await pg.DisposeAsync();
                    var t5 = Stopwatch.GetTimestamp();
                    if (i >= 2)
                    {
                        steps["StartAsync (ready log line)"].Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                        steps["open connection (type loading)"].Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
                        steps["open connection (NoTypeLoading)"].Add(Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds);
                        steps["test's 3 statements"].Add(Stopwatch.GetElapsedTime(t3, t4).TotalMilliseconds);
                        steps["dispose"].Add(Stopwatch.GetElapsedTime(t4, t5).TotalMilliseconds);
                    }
                }

                foreach (var (step, values) in steps)
                {
                    s.AppendLine(CultureInfo.InvariantCulture, $"| WAL segment {walMiB} MiB | {step} | {Stats.Cells(Summary.Of(values))} |");
                }
            }
            finally
            {
                work.Delete(recursive: true);
            }
        }

        return new Section("diag-pg", s.ToString());
    }
}
