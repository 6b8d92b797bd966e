#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/events.h"
#include "domain/ids.h"
#include "domain/values.h"

namespace shopcqrs::domain {

class Customer {
 public:
  // Validates name (1..200) and email (1..254, contains '@'); records CustomerRegistered.
  static Result<Customer> Register(CustomerId id, std::string name, std::string email,
                                   Timestamp now);
  // Rebuilds from stored state; records nothing.
  static Customer Rehydrate(CustomerId id, std::string name, std::string email,
                            std::int64_t version);

  // At least one of name/email must be given (else validation_failed); records
  // CustomerDetailsChanged with the full details after the change.
  Result<void> ChangeDetails(std::optional<std::string> name, std::optional<std::string> email,
                             Timestamp now);

  const CustomerId& id() const { return id_; }
  const std::string& name() const { return name_; }
  const std::string& email() const { return email_; }
  std::int64_t version() const { return version_; }
  const std::vector<DomainEvent>& pending_events() const { return pending_; }

 private:
  Customer(CustomerId id, std::string name, std::string email, std::int64_t version);
  void Record(EventPayload payload, Timestamp now);

  CustomerId id_;
  std::string name_;
  std::string email_;
  std::int64_t version_ = 0;
  std::vector<DomainEvent> pending_;
};

}  // namespace shopcqrs::domain
